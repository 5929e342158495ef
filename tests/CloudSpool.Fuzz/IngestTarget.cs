using System.Security.Cryptography;
using System.Text;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;
using CloudSpool.TestSupport.Pop3;
using MimeKit;

namespace CloudSpool.Fuzz;

/// <summary>
/// Ingest of one fetched message: <see cref="IngestedMessage.FromBytes"/> (the RFC 1939 size and hashes of
/// <see cref="IngestMeter"/>, the header summary of <see cref="MessageSummarizer"/>, the dedup key) and the UIDL the
/// spool derives from it (<see cref="SpoolUidl.For"/>).
/// </summary>
/// <remarks>
/// Invariants: nothing throws; the figures match the slow reference (length, SHA-256, the size of the bytes with every
/// bare LF made CRLF, a bare CR kept) and do not depend on how the bytes were cut into chunks as they arrived; a message MimeKit cannot
/// parse is flagged malformed with a reason, and a reason is only given with the flag; every summary field stays within
/// its bound and is well-formed UTF-16 (it goes into a Table row); the UIDL is 1 to 70 characters of 0x21-0x7E
/// (RFC 1939 section 7).
/// </remarks>
public sealed class IngestTarget : IFuzzTarget
{
    private static readonly DateTimeOffset ReceivedAt = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    public string Name => "ingest";

    public byte[] Run(byte[] input)
    {
        var ingested = IngestedMessage.FromBytes(input, "fuzz", "fuzz-key", ReceivedAt);
        var figures = ingested.Figures;
        if (figures.RawLength != input.Length)
            throw new FuzzFindingException($"ingest: RawLength {figures.RawLength}, the message has {input.Length} bytes");
        if (figures.Sha256 != Convert.ToHexStringLower(SHA256.HashData(input)))
            throw new FuzzFindingException("ingest: Sha256 is not the SHA-256 of the bytes");
        var wireSize = Wire.NormalizeCrlf(input).Length;
        if (figures.Pop3Size != wireSize)
            throw new FuzzFindingException($"ingest: Pop3Size {figures.Pop3Size}, the bytes with bare LFs made CRLF are {wireSize}");
        if (Chunked(input) is var chunked && chunked != figures)
            throw new FuzzFindingException($"ingest: metering in small chunks gave {chunked}, in one piece {figures}");

        var summary = ingested.Summary;
        if (summary.Malformed != summary.ParseError is not null)
            throw new FuzzFindingException($"ingest: Malformed {summary.Malformed} with parse error {summary.ParseError ?? "(none)"}");
        if (!summary.Malformed && !MimeKitParses(input))
            throw new FuzzFindingException("ingest: MimeKit cannot parse the message, but the summary is not flagged malformed");
        foreach (var (name, value) in Fields(summary))
        {
            if (value is null)
                continue;
            if (value.Length > MessageSummary.MaxFieldLength)
                throw new FuzzFindingException($"ingest: summary {name} has {value.Length} characters (limit {MessageSummary.MaxFieldLength})");
            if (!IsWellFormed(value))
                throw new FuzzFindingException($"ingest: summary {name} is not well-formed UTF-16 (a lone surrogate)");
        }
        if (summary.AttachmentNames.Count > MessageSummary.MaxAttachmentNames || summary.AttachmentNames.Any(n => n.Length > MessageSummary.MaxAttachmentNameLength || !IsWellFormed(n)))
            throw new FuzzFindingException("ingest: attachment names over their bounds or not well-formed");

        var uidl = SpoolUidl.For(ingested.DedupKey);
        if (uidl.Length is < 1 or > 70 || uidl.Any(c => c is < '!' or > '~'))
            throw new FuzzFindingException($"ingest: UIDL \"{uidl}\" is not 1-70 characters of 0x21-0x7E");

        var text = new StringBuilder();
        text.Append(figures).Append('\n').Append(ingested.DedupKey).Append('\n').Append(uidl).Append('\n');
        foreach (var (name, value) in Fields(summary))
            text.Append(name).Append(": ").Append(value).Append('\n');
        text.Append("Date: ").Append(summary.Date?.ToString("O", System.Globalization.CultureInfo.InvariantCulture)).Append('\n');
        text.Append("Attachments: ").Append(summary.AttachmentCount).Append(' ').AppendJoin(" | ", summary.AttachmentNames).Append('\n');
        text.Append("Malformed: ").Append(summary.Malformed).Append('\n');
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>The figures when the bytes arrive in pieces of 1 to 7 bytes (every CR/LF pair is split somewhere).</summary>
    private static IngestFigures Chunked(byte[] input)
    {
        using var meter = new IngestMeter();
        var size = 1;
        for (var pos = 0; pos < input.Length; pos += size, size = (size % 7) + 1)
            meter.Append(input.AsSpan(pos, Math.Min(size, input.Length - pos)));
        return meter.Complete();
    }

    private static bool MimeKitParses(byte[] input)
    {
        try
        {
            MimeMessage.Load(MessageSummarizer.Options, new MemoryStream(input, writable: false));
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static IEnumerable<(string Name, string? Value)> Fields(MessageSummary s) =>
    [
        ("From", s.From), ("To", s.To), ("Subject", s.Subject), ("Message-ID", s.MessageId), ("List-Id", s.ListId),
        ("Auto-Submitted", s.AutoSubmitted), ("Precedence", s.Precedence), ("ParseError", s.ParseError),
    ];

    private static bool IsWellFormed(string value)
    {
        for (var i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
                i++;
            else if (char.IsSurrogate(value[i]))
                return false;
        }
        return true;
    }
}
