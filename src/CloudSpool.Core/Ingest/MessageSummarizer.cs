using MimeKit;

namespace CloudSpool.Core.Ingest;

/// <summary>Builds a <see cref="MessageSummary"/> from raw message bytes with MimeKit.</summary>
public static class MessageSummarizer
{
    // Deeply nested MIME (see corpus stack-overflow.txt) must not exhaust the stack or the time of a run.
    internal static readonly ParserOptions Options = CreateOptions();

    private static ParserOptions CreateOptions()
    {
        // Legacy charsets (ISO-2022-JP, Shift_JIS, ...) are registered when this assembly loads (Encodings).
        var options = ParserOptions.Default.Clone();
        options.MaxMimeDepth = 64;
        options.AllowAddressesWithoutDomain = true;
        return options;
    }

    /// <summary>
    /// Summarises the message in <paramref name="raw"/> (read from its current position).
    /// Never throws for bad input: a message MimeKit cannot parse is returned as malformed with the
    /// parse error, and so is one whose header fields are folded over so many lines that parsing it would take
    /// MimeKit too long (<see cref="FoldedHeaderGuard"/>); only cancellation and I/O errors of the stream itself propagate.
    /// </summary>
    public static MessageSummary Summarize(Stream raw, CancellationToken cancellationToken = default)
    {
        if (FoldedHeaderGuard.Check(raw) is { } tooCostly)
            return new MessageSummary { Malformed = true, ParseError = Bound(tooCostly) };
        MimeMessage message;
        try
        {
            // persistent: true keeps part content on the (file) stream instead of copying it into memory.
            message = MimeMessage.Load(Options, raw, persistent: raw.CanSeek, cancellationToken);
        }
        catch (FormatException ex)
        {
            return new MessageSummary { Malformed = true, ParseError = Bound(ex.Message) };
        }

        try
        {
            return FromMessage(message);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // MimeKit parsed the structure but a header could not be decoded: keep what we can say.
            return new MessageSummary
            {
                Subject = Bound(SafeHeader(message, HeaderId.Subject)),
                MessageId = Bound(SafeHeader(message, HeaderId.MessageId)),
                Malformed = true,
                ParseError = Bound(ex.Message),
            };
        }
    }

    private static MessageSummary FromMessage(MimeMessage message)
    {
        var names = new List<string>();
        var count = 0;
        foreach (var attachment in message.Attachments)
        {
            count++;
            var name = attachment switch
            {
                MimePart part => part.FileName,
                MessagePart rfc822 => rfc822.ContentDisposition?.FileName ?? rfc822.Message?.Subject,
                _ => null,
            };
            // At most 50 names of at most 256 characters: a metadata row stays far below the 64 KiB property limit.
            if (!string.IsNullOrWhiteSpace(name) && names.Count < MessageSummary.MaxAttachmentNames)
                names.Add(Bound(name, MessageSummary.MaxAttachmentNameLength)!);
        }

        var malformed = message.Headers.Count == 0;
        return new MessageSummary
        {
            From = Bound(message.From.Count > 0 ? message.From.ToString() : null),
            To = Bound(message.To.Count > 0 ? message.To.ToString() : null),
            Subject = Bound(message.Subject),
            Date = message.Headers.Contains(HeaderId.Date) ? message.Date : null,
            MessageId = Bound(message.MessageId),
            ListId = Bound(message.Headers[HeaderId.ListId]?.Trim()),
            AutoSubmitted = Bound(message.Headers["Auto-Submitted"]?.Trim()),
            Precedence = Bound(message.Headers[HeaderId.Precedence]?.Trim()),
            AttachmentCount = count,
            AttachmentNames = names,
            Malformed = malformed,
            ParseError = malformed ? "no header fields found" : null,
        };
    }

    private static string? SafeHeader(MimeMessage message, HeaderId id)
    {
        var header = message.Headers.FirstOrDefault(h => h.Id == id);
        return header?.Value;
    }

    private static string? Bound(string? value, int max = MessageSummary.MaxFieldLength)
    {
        if (value is null)
            return null;
        if (value.Length <= max)
            return value;
        var cut = max;
        if (char.IsHighSurrogate(value[cut - 1]))
            cut--; // never split a surrogate pair
        return value[..cut];
    }
}
