using System.Globalization;
using System.Text;
using MimeKit;
using MimeKit.IO;
using MimeKit.Text;

namespace CloudSpool.Core.Forward;

/// <summary>What one destination accepts.</summary>
/// <param name="MaxBytes">Largest forwarded message, in bytes as written on the SMTP wire (CRLF line ends).</param>
/// <param name="KeepAttachmentTypes">MIME types (<c>text/calendar</c>, <c>image/*</c>) of attachments kept while they fit.</param>
public sealed record TrimLimits(long MaxBytes, IReadOnlyList<string> KeepAttachmentTypes);

/// <summary>Who a forwarded copy is from and to, and how it is identified.</summary>
/// <param name="Sender">CloudSpool's own sending address (the relay accepts it; the original sender's may be refused by SPF/DMARC).</param>
/// <param name="Destination">The phone's address.</param>
/// <param name="MessageId">Message-ID of the copy (without angle brackets), derived from message and destination.</param>
/// <param name="SourceKey">The spool key of the original, written in the loop-guard header.</param>
/// <param name="ReceivedAt">Used as Date when the original has none.</param>
public sealed record ForwardAddressing(MailboxAddress Sender, MailboxAddress Destination, string MessageId, string SourceKey, DateTimeOffset ReceivedAt);

/// <summary>An attachment of the original, by name, type and decoded size.</summary>
public sealed record AttachmentNote(string Name, string ContentType, long Size);

/// <summary>The copy to send, or why there is none.</summary>
public sealed record TrimmedMessage
{
    /// <summary>The message to send; null when <see cref="SkipReason"/> says why not.</summary>
    public MimeMessage? Message { get; init; }

    /// <summary>Size of <see cref="Message"/> on the SMTP wire.</summary>
    public long Size { get; init; }

    /// <summary>True when the text was cut to fit.</summary>
    public bool Truncated { get; init; }

    public IReadOnlyList<AttachmentNote> Removed { get; init; } = [];
    public IReadOnlyList<AttachmentNote> Kept { get; init; } = [];

    /// <summary>Why nothing can be sent.</summary>
    public string? SkipReason { get; init; }

    internal static TrimmedMessage Skip(string reason) => new() { SkipReason = reason };
}

/// <summary>
/// Builds the copy of a stored message that goes to a phone. The copy keeps the original's Subject and Date;
/// its From is CloudSpool's sending address with the original sender's name and " via CloudSpool" as display name
/// (a relay refuses, and DMARC rejects, mail claiming the original sender's address), Reply-To is the original's
/// Reply-To or From, so replies go to the original sender. The text starts with the original From/To/Cc; an HTML-only
/// message is converted to text; attachments are removed and listed by name and size at the end (the allow-listed
/// types are kept, smallest first, while the whole message with its complete text fits); when the text does not fit it
/// is cut at a grapheme boundary of the decoded text (never inside a UTF-8 sequence or an ISO-2022-JP escape: the copy
/// is re-encoded as UTF-8) with a note. Every copy carries <see cref="LoopHeader"/>, so CloudSpool never forwards it again.
/// </summary>
public static class ForwardTrimmer
{
    /// <summary>Header added to every forwarded copy (value: the original's spool key); mail carrying it is never forwarded.</summary>
    public const string LoopHeader = "X-CloudSpool-Forwarded";

    /// <summary>Appended to the original sender's name in the copy's From display name.</summary>
    public const string ViaSuffix = " via CloudSpool";

    private const int MaxListedAttachments = 50;
    private const int MaxAddressLineLength = 300;

    /// <summary>SMTP writes CRLF line ends: sizes are measured that way.</summary>
    public static FormatOptions WireFormat { get; } = CreateWireFormat();

    private static FormatOptions CreateWireFormat()
    {
        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        return options;
    }

    /// <summary>Builds the trimmed copy. Never throws for bad content: a message that cannot be forwarded gets a skip reason.</summary>
    public static TrimmedMessage Trim(ForwardSource source, TrimLimits limits, ForwardAddressing addressing)
    {
        try
        {
            if (source.Message is null)
                return TrimRecovered(source, limits, addressing);
            return TrimParsed(source.Message, limits, addressing);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException or NotSupportedException or DecoderFallbackException or IOException)
        {
            return TrimmedMessage.Skip($"could not be prepared for forwarding: {ex.Message}");
        }
    }

    /// <summary>
    /// The original message unchanged, with the loop-guard and RFC 5322 section 3.6.6 Resent-* fields on top
    /// (forward as is: no size limit applies). An unparseable message cannot go as is.
    /// </summary>
    public static TrimmedMessage AsIs(ForwardSource source, ForwardAddressing addressing)
    {
        if (source.Message is not { } message)
            return TrimmedMessage.Skip($"cannot be forwarded as is: the message could not be parsed ({source.ParseError})");
        foreach (var name in new[] { LoopHeader, "Resent-From", "Resent-To", "Resent-Date", "Resent-Message-ID" })
            message.Headers.RemoveAll(name);
        message.Headers.Insert(0, new Header(LoopHeader, addressing.SourceKey));
        message.Headers.Insert(0, new Header("Resent-Message-ID", $"<{addressing.MessageId}>"));
        message.Headers.Insert(0, new Header("Resent-To", addressing.Destination.ToString(encode: true)));
        message.Headers.Insert(0, new Header("Resent-From", addressing.Sender.ToString(encode: true)));
        message.Headers.Insert(0, new Header(HeaderId.ResentDate, MimeKit.Utils.DateUtils.FormatDate(addressing.ReceivedAt)));
        return new TrimmedMessage { Message = message, Size = Measure(message) };
    }

    private static TrimmedMessage TrimParsed(MimeMessage original, TrimLimits limits, ForwardAddressing addressing)
    {
        // Text beyond a few times the limit can never be shown: a 50 MB text part is decoded only that far.
        var content = new Content { MaxDecodedBytes = (limits.MaxBytes * 4) + 65536 };
        Walk(original.Body, content);
        var body = content.Body.ToString().Trim();
        if (body.Length == 0 && content.Items.Count == 0 && string.IsNullOrWhiteSpace(original.Subject))
            body = "(no text)";

        var intro = new StringBuilder();
        AddressLine(intro, "From", original.From);
        AddressLine(intro, "To", original.To);
        AddressLine(intro, "Cc", original.Cc);
        if (intro.Length > 0)
            intro.Append('\n');

        var fromName = original.From.Mailboxes.FirstOrDefault() is { } first
            ? (string.IsNullOrWhiteSpace(first.Name) ? first.Address : first.Name)
            : "unknown sender";
        var header = new HeaderInfo(
            Bounded(fromName, 200) + ViaSuffix,
            original.ReplyTo.Count > 0 ? original.ReplyTo : original.From,
            original.Subject,
            original.Headers.Contains(HeaderId.Date) && original.Date != DateTimeOffset.MinValue ? original.Date : addressing.ReceivedAt);

        var candidates = content.Items.Where(i => i.Entity is MimePart && Keeps(limits.KeepAttachmentTypes, i.ContentType))
            .OrderBy(i => i.Size).ToList();
        return Fit(header, intro.ToString(), body, content.Items, candidates, limits, addressing, content.Capped);
    }

    private static TrimmedMessage TrimRecovered(ForwardSource source, TrimLimits limits, ForwardAddressing addressing)
    {
        if (string.IsNullOrWhiteSpace(source.RecoveredText))
            return TrimmedMessage.Skip($"nothing readable to forward: the message could not be parsed ({source.ParseError})");
        var intro = $"This message could not be read as mail ({source.ParseError}); below is the text that could be recovered.\n\n";
        var header = new HeaderInfo("unknown sender" + ViaSuffix, null, "(unreadable message)", addressing.ReceivedAt);
        return Fit(header, intro, source.RecoveredText, [], [], limits, addressing, capped: false);
    }

    /// <summary>Complete text with as many kept attachments as fit; else no attachments and the longest prefix of the text that fits.</summary>
    private static TrimmedMessage Fit(HeaderInfo header, string intro, string body, IReadOnlyList<Item> items, IReadOnlyList<Item> candidates, TrimLimits limits, ForwardAddressing addressing, bool capped)
    {
        for (var kept = candidates.Count; kept >= 0; kept--)
        {
            var keep = candidates.Take(kept).ToList();
            var message = Build(header, addressing, intro + body + Trailer(items, keep), keep);
            var size = Measure(message);
            if (size <= limits.MaxBytes)
                return Result(message, size, truncated: false, items, keep);
        }

        // Encoded text is never smaller than its UTF-8 bytes: cut to the limit first, then search the longest prefix.
        var pre = PrefixWithinUtf8Bytes(body, limits.MaxBytes);
        var starts = StringInfo.ParseCombiningCharacters(pre);
        string Text(int elements)
        {
            var end = elements >= starts.Length ? pre.Length : starts[elements];
            var percent = body.Length == 0 ? 100 : (int)(100L * end / body.Length);
            var shown = capped ? "" : $": {percent}% of the text shown";
            var note = $"\n\n[… cut here to fit the phone's limit of {FormatSize(limits.MaxBytes)}{shown}]";
            return intro + pre[..end].TrimEnd() + note + Trailer(items, []);
        }

        var best = Build(header, addressing, Text(0), []);
        var bestSize = Measure(best);
        if (bestSize > limits.MaxBytes)
            return TrimmedMessage.Skip($"even without its text the forwarded copy would be {FormatSize(bestSize)}, over the limit of {FormatSize(limits.MaxBytes)}");
        int lo = 0, hi = starts.Length;
        while (lo < hi)
        {
            var mid = lo + ((hi - lo + 1) / 2);
            var candidate = Build(header, addressing, Text(mid), []);
            var size = Measure(candidate);
            if (size <= limits.MaxBytes)
            {
                (lo, best, bestSize) = (mid, candidate, size);
            }
            else
            {
                hi = mid - 1;
            }
        }
        return Result(best, bestSize, truncated: true, items, []);
    }

    private static TrimmedMessage Result(MimeMessage message, long size, bool truncated, IReadOnlyList<Item> items, IReadOnlyList<Item> kept) => new()
    {
        Message = message,
        Size = size,
        Truncated = truncated,
        Removed = [.. items.Except(kept).Select(i => i.Note)],
        Kept = [.. kept.Select(i => i.Note)],
    };

    private static string Trailer(IReadOnlyList<Item> items, IReadOnlyList<Item> kept)
    {
        var removed = items.Except(kept).ToList();
        if (removed.Count == 0)
            return "";
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"\n\n--\nAttachments not forwarded ({removed.Count}):");
        foreach (var item in removed.Take(MaxListedAttachments))
            text.Append(CultureInfo.InvariantCulture, $"\n- {item.Name} ({item.ContentType}, {FormatSize(item.Size)})");
        if (removed.Count > MaxListedAttachments)
            text.Append(CultureInfo.InvariantCulture, $"\n- … and {removed.Count - MaxListedAttachments} more");
        return text.ToString();
    }

    private static MimeMessage Build(HeaderInfo header, ForwardAddressing addressing, string text, IReadOnlyList<Item> kept)
    {
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress(header.FromDisplayName, addressing.Sender.Address));
        if (header.ReplyTo is not null)
            message.ReplyTo.AddRange(header.ReplyTo);
        message.To.Add(addressing.Destination);
        if (header.Subject is not null)
            message.Subject = header.Subject;
        message.Date = header.Date;
        message.MessageId = addressing.MessageId;
        message.Headers.Add(LoopHeader, addressing.SourceKey);

        var part = new TextPart(TextFormat.Plain);
        part.SetText(Encoding.UTF8, text.Replace("\n", "\r\n", StringComparison.Ordinal));
        part.ContentTransferEncoding = part.GetBestEncoding(EncodingConstraint.SevenBit);
        if (kept.Count == 0)
        {
            message.Body = part;
            return message;
        }
        // MimeKit picks a random boundary; derived from the copy's Message-ID, the same copy is the same bytes every
        // time it is built (a retry after a crash sends what the first attempt sent). "=_" never occurs in base64 or
        // quoted-printable text, as with MimeKit's own boundaries.
        var mixed = new Multipart("mixed") { Boundary = Boundary(addressing.MessageId) };
        mixed.Add(part);
        foreach (var item in kept)
            mixed.Add(item.Entity);
        message.Body = mixed;
        return message;
    }

    private static string Boundary(string messageId) =>
        "=_cloudspool_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(messageId)))[..24];

    /// <summary>Size of the message as SMTP DATA would carry it (before dot-stuffing).</summary>
    public static long Measure(MimeMessage message)
    {
        using var measure = new MeasuringStream();
        message.WriteTo(WireFormat, measure);
        return measure.Length;
    }

    private static void Walk(MimeEntity? entity, Content content)
    {
        switch (entity)
        {
            case null:
                return;
            case Multipart alternative when alternative.ContentType.IsMimeType("multipart", "alternative") && alternative.Count > 0:
                // RFC 2046 section 5.1.4: alternatives in increasing faithfulness; plain text reads best on a phone.
                var plain = alternative.OfType<TextPart>().FirstOrDefault(t => !t.IsAttachment && t.IsPlain);
                Walk(plain ?? alternative[^1], content);
                return;
            case Multipart multipart:
                foreach (var child in multipart)
                    Walk(child, content);
                return;
            case TextPart text when !text.IsAttachment && (text.IsPlain || text.IsHtml):
                var decoded = Decode(text, content);
                if (decoded.Length == 0)
                    return;
                if (content.Body.Length > 0)
                    content.Body.Append("\n\n");
                content.Body.Append(decoded);
                return;
            case MessagePart rfc822:
                var subject = rfc822.Message?.Subject;
                content.Items.Add(new Item(rfc822, rfc822.ContentDisposition?.FileName ?? (subject is null ? "attached message" : $"message \"{Bounded(subject, 200)}\""),
                    rfc822.ContentType.MimeType, DecodedSize(rfc822)));
                return;
            case MimePart part:
                var name = part.FileName;
                content.Items.Add(new Item(part, string.IsNullOrWhiteSpace(name) ? "(unnamed)" : Bounded(name, 200), part.ContentType.MimeType, DecodedSize(part)));
                return;
        }
    }

    private static string Decode(TextPart part, Content content)
    {
        if (part.Content is not null && DecodedSize(part) > content.MaxDecodedBytes)
        {
            // Only the head can ever be shown: decode that much through MimeKit's own charset handling.
            var head = new MemoryStream();
            using (var decoded = part.Content.Open())
            {
                var buffer = new byte[81920];
                int read;
                while (head.Length < content.MaxDecodedBytes && (read = decoded.Read(buffer, 0, (int)Math.Min(buffer.Length, content.MaxDecodedBytes - head.Length))) > 0)
                    head.Write(buffer, 0, read);
            }
            head.Position = 0;
            var headPart = new TextPart(part.ContentType.MediaSubtype) { Content = new MimeContent(head) };
            foreach (var parameter in part.ContentType.Parameters)
                headPart.ContentType.Parameters[parameter.Name] = parameter.Value;
            part = headPart;
            content.Capped = true;
        }
        string text;
        try
        {
            text = part.Text;
        }
        catch (Exception ex) when (ex is NotSupportedException or ArgumentException or DecoderFallbackException)
        {
            text = part.GetText(Encoding.Latin1); // an unknown or lying charset: keep the bytes readable as far as they go
        }
        text = text.Replace("\r\n", "\n", StringComparison.Ordinal);
        if (part.IsFlowed)
        {
            var delsp = part.ContentType.Parameters.TryGetValue("delsp", out string? d) && d is not null && d.Equals("yes", StringComparison.OrdinalIgnoreCase);
            text = new FlowedToText { DeleteSpace = delsp }.Convert(text);
        }
        else if (part.IsHtml)
        {
            text = HtmlText.Convert(text);
        }
        return text.Trim();
    }

    private static long DecodedSize(MimeEntity entity)
    {
        using var measure = new MeasuringStream();
        switch (entity)
        {
            case MimePart { Content: not null } part:
                part.Content.DecodeTo(measure);
                break;
            case MessagePart { Message: not null } rfc822:
                rfc822.Message.WriteTo(WireFormat, measure);
                break;
        }
        return measure.Length;
    }

    /// <summary>Whether an attachment of <paramref name="mimeType"/> is on the allow-list (<c>type/subtype</c> or <c>type/*</c>).</summary>
    public static bool Keeps(IReadOnlyList<string> allowList, string mimeType) =>
        allowList.Any(t => t.EndsWith("/*", StringComparison.Ordinal)
            ? mimeType.StartsWith(t[..^1], StringComparison.OrdinalIgnoreCase)
            : mimeType.Equals(t, StringComparison.OrdinalIgnoreCase));

    private static void AddressLine(StringBuilder intro, string field, InternetAddressList list)
    {
        if (list.Count == 0)
            return;
        intro.Append(field).Append(": ").Append(Bounded(list.ToString(), MaxAddressLineLength)).Append('\n');
    }

    /// <summary>The longest prefix of <paramref name="text"/> whose UTF-8 encoding has at most <paramref name="maxBytes"/> bytes, ending at a grapheme boundary.</summary>
    public static string PrefixWithinUtf8Bytes(string text, long maxBytes)
    {
        if (Encoding.UTF8.GetMaxByteCount(text.Length) <= maxBytes || Encoding.UTF8.GetByteCount(text) <= maxBytes)
            return text;
        var bytes = 0L;
        var end = 0;
        while (end < text.Length)
        {
            var length = StringInfo.GetNextTextElementLength(text, end);
            var size = Encoding.UTF8.GetByteCount(text.AsSpan(end, length));
            if (bytes + size > maxBytes)
                break;
            bytes += size;
            end += length;
        }
        return text[..end];
    }

    /// <summary>At most <paramref name="max"/> characters, never splitting a surrogate pair, with an ellipsis when cut.</summary>
    private static string Bounded(string text, int max)
    {
        if (text.Length <= max)
            return text;
        var cut = char.IsHighSurrogate(text[max - 1]) ? max - 1 : max;
        return text[..cut] + "…";
    }

    /// <summary>1,234 bytes / 12.3 KB / 4.5 MB.</summary>
    public static string FormatSize(long bytes) => bytes switch
    {
        < 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes"),
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MB"),
    };

    private sealed record HeaderInfo(string FromDisplayName, InternetAddressList? ReplyTo, string? Subject, DateTimeOffset Date);

    private sealed record Item(MimeEntity Entity, string Name, string ContentType, long Size)
    {
        public AttachmentNote Note => new(Name, ContentType, Size);
    }

    private sealed class Content
    {
        public long MaxDecodedBytes { get; init; } = long.MaxValue;

        /// <summary>True when some text part was decoded only in part.</summary>
        public bool Capped { get; set; }

        public StringBuilder Body { get; } = new();
        public List<Item> Items { get; } = [];
    }
}
