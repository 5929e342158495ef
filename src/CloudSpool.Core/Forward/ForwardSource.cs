using System.Text;
using CloudSpool.Core.Ingest;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>
/// A stored message as the forward job sees it: parsed by MimeKit, or, when MimeKit cannot make sense of it,
/// the text that can be recovered from its raw bytes and the reason it could not be parsed.
/// </summary>
public sealed class ForwardSource
{
    /// <summary>How many raw bytes a best-effort reading of an unparseable message looks at.</summary>
    public const int MaxRecoveredBytes = 256 * 1024;

    private ForwardSource(MimeMessage? message, string? recoveredText, string? parseError)
    {
        Message = message;
        RecoveredText = recoveredText;
        ParseError = parseError;
    }

    /// <summary>The parsed message; null when it could not be parsed.</summary>
    public MimeMessage? Message { get; }

    /// <summary>Readable text recovered from the raw bytes when <see cref="Message"/> is null.</summary>
    public string? RecoveredText { get; }

    /// <summary>Why the message could not be parsed (null when it was).</summary>
    public string? ParseError { get; }

    /// <summary>Wraps an already parsed message.</summary>
    public static ForwardSource From(MimeMessage message) => new(message, null, null);

    /// <summary>
    /// Parses <paramref name="raw"/> (read from its current position). Never throws for bad content: a message
    /// without any header field, that MimeKit refuses, or whose header fields are folded over too many lines to parse in
    /// reasonable time (<see cref="FoldedHeaderGuard"/>) yields the recoverable text instead. A stream that
    /// cannot seek is buffered in memory (the forward job passes a temporary file).
    /// </summary>
    public static ForwardSource Load(Stream raw, CancellationToken cancellationToken = default)
    {
        if (!raw.CanSeek)
        {
            var buffer = new MemoryStream();
            raw.CopyTo(buffer);
            buffer.Position = 0;
            raw = buffer;
        }
        var start = raw.Position;
        var error = FoldedHeaderGuard.Check(raw);
        if (error is null)
        {
            try
            {
                var message = MimeMessage.Load(MessageSummarizer.Options, raw, persistent: true, cancellationToken);
                if (message.Headers.Count > 0)
                    return new ForwardSource(message, null, null);
                error = "no header fields found";
            }
            catch (FormatException ex)
            {
                error = ex.Message;
            }
        }
        raw.Position = start;
        var bytes = new byte[(int)Math.Min(MaxRecoveredBytes, Math.Max(0, raw.Length - start))];
        raw.ReadExactly(bytes);
        return new ForwardSource(null, Recover(bytes), error);
    }

    /// <summary>UTF-8 with every invalid sequence replaced, control characters (except tab and line breaks) dropped.</summary>
    private static string Recover(byte[] bytes)
    {
        var decoded = Encoding.UTF8.GetString(bytes);
        var text = new StringBuilder(decoded.Length);
        foreach (var c in decoded.Replace("\r\n", "\n", StringComparison.Ordinal))
        {
            if (c is '\n' or '\t' || !char.IsControl(c))
                text.Append(c);
        }
        return text.ToString().Trim();
    }
}
