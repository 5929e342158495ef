using System.Text;
using CloudSpool.Core.Ingest;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>What rules look at: the parsed message (or, for an unparseable one, its ingest summary) and its spool metadata.</summary>
public sealed class ForwardFacts
{
    private static readonly string[] AutomaticHeaders = ["Auto-Submitted", "Precedence", "List-Id"];

    private readonly HeaderList? _headers;
    private readonly MessageSummary? _summary;

    /// <summary>Header fields read line by line from the recovered text of a message that could not be parsed.</summary>
    private IReadOnlyList<(string Field, string Value)> _looseHeaders = [];

    private ForwardFacts(HeaderList? headers, MessageSummary? summary, string account, long size)
    {
        _headers = headers;
        _summary = summary;
        SourceAccount = account;
        Size = size;
    }

    public IReadOnlyList<MailboxAddress> From { get; private init; } = [];
    public IReadOnlyList<MailboxAddress> Recipients { get; private init; } = [];
    public string? Subject { get; private init; }
    public string SourceAccount { get; }
    public long Size { get; }

    /// <summary>MIME type and file name of every attachment (including removed-by-trimming candidates such as inline images).</summary>
    public IReadOnlyList<(string Type, string? Name)> Attachments { get; private init; } = [];

    /// <summary>Builds the facts of a loaded message; <paramref name="summary"/> stands in when it could not be parsed.</summary>
    public static ForwardFacts Create(ForwardSource source, string sourceAccount, long size, MessageSummary? summary)
    {
        if (source.Message is not { } message)
        {
            return new ForwardFacts(null, summary, sourceAccount, size)
            {
                _looseHeaders = LooseHeaders(source.RecoveredText),
                From = ParseList(summary?.From),
                Recipients = ParseList(summary?.To),
                Subject = summary?.Subject,
                Attachments = [.. (summary?.AttachmentNames ?? []).Select(n => ("application/octet-stream", (string?)n))],
            };
        }
        var recipients = message.To.Mailboxes.Concat(message.Cc.Mailboxes)
            .Concat(message.Headers.Where(h => h.Field.Equals("Delivered-To", StringComparison.OrdinalIgnoreCase)).SelectMany(h => ParseList(h.Value)));
        return new ForwardFacts(message.Headers, summary, sourceAccount, size)
        {
            From = [.. message.From.Mailboxes],
            Recipients = [.. recipients],
            Subject = message.Subject,
            Attachments = [.. message.BodyParts.Where(IsAttachmentLike).Select(e => (e.ContentType.MimeType, e is MimePart p ? p.FileName : e.ContentDisposition?.FileName))],
        };
    }

    private static bool IsAttachmentLike(MimeEntity entity) =>
        entity is MessagePart || entity.IsAttachment || entity is MimePart and not TextPart;

    private static IReadOnlyList<MailboxAddress> ParseList(string? text) =>
        text is not null && InternetAddressList.TryParse(text, out var list) ? [.. list.Mailboxes] : [];

    /// <summary>
    /// The header fields at the start of recovered text (a message MimeKit could not or would not parse), read the
    /// forgiving way: "Name: value" lines and their continuation lines until the first empty line, each value cut at
    /// 4,096 characters and at most 500 fields, so rules on any header still apply to such a message.
    /// </summary>
    private static List<(string Field, string Value)> LooseHeaders(string? text)
    {
        var fields = new List<(string Field, StringBuilder Value)>();
        foreach (var line in (text ?? "").Split('\n'))
        {
            if (line.Length == 0 || fields.Count > 500)
                break;
            if (line[0] is ' ' or '\t')
            {
                if (fields.Count > 0 && fields[^1].Value.Length < 4096)
                    fields[^1].Value.Append(' ').Append(line.AsSpan().Trim());
                continue;
            }
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || line.AsSpan(0, colon).ContainsAny(' ', '\t'))
                break; // not a header field: the header block is over
            fields.Add((line[..colon], new StringBuilder(line[(colon + 1)..].Trim())));
        }
        return [.. fields.Select(f => (f.Field, f.Value.Length > 4096 ? f.Value.ToString(0, 4096) : f.Value.ToString()))];
    }

    /// <summary>Every value of a header field (case-insensitive name).</summary>
    public IReadOnlyList<string> Header(string name)
    {
        if (_headers is not null)
            return [.. _headers.Where(h => h.Field.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value.Trim())];
        var loose = _looseHeaders.Where(h => h.Field.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToList();
        if (loose.Count > 0)
            return loose;
        string? value = name.ToUpperInvariant() switch
        {
            "LIST-ID" => _summary?.ListId,
            "PRECEDENCE" => _summary?.Precedence,
            "AUTO-SUBMITTED" => _summary?.AutoSubmitted,
            "SUBJECT" => _summary?.Subject,
            "FROM" => _summary?.From,
            "TO" => _summary?.To,
            "MESSAGE-ID" => _summary?.MessageId,
            _ => null,
        };
        return value is null ? [] : [value];
    }

    /// <summary>Why this is automatic or bulk mail (RFC 3834 Auto-Submitted, Precedence, RFC 2919 List-Id), or null.</summary>
    public string? AutomaticBecause()
    {
        foreach (var value in Header("Auto-Submitted"))
        {
            var token = value.Split(';', 2)[0].Trim();
            if (!token.Equals("no", StringComparison.OrdinalIgnoreCase))
                return $"Auto-Submitted: {token}";
        }
        foreach (var value in Header("Precedence"))
        {
            if (value.Trim().ToLowerInvariant() is "bulk" or "list" or "junk")
                return $"Precedence: {value.Trim()}";
        }
        return Header("List-Id").FirstOrDefault() is { } list ? $"List-Id: {list}" : null;
    }

    /// <summary>True when the rule names one of the headers that make mail automatic.</summary>
    internal static bool NamesAutomaticHeader(IEnumerable<string> headerNames) =>
        headerNames.Any(n => AutomaticHeaders.Contains(n, StringComparer.OrdinalIgnoreCase));

    /// <summary>Whether the message carries CloudSpool's loop-guard header.</summary>
    public bool AlreadyForwarded => Header(ForwardTrimmer.LoopHeader).Count > 0;
}
