using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Spool;

/// <summary>
/// Metadata of one message in a mailbox, as committed at ingest. Readers (the POP3 edge, the
/// forward job, `cloudspool messages`) work from this and open the raw bytes only to deliver them.
/// </summary>
public sealed record SpoolMessage
{
    public required string Mailbox { get; init; }

    /// <summary>Key in the mailbox (<see cref="SpoolKeys"/>); grows with commit time so readers catch up with a range query.</summary>
    public required string MessageKey { get; init; }

    /// <summary>Stable POP3 unique-id (RFC 1939 section 7: 1-70 characters 0x21-0x7E).</summary>
    public required string Uidl { get; init; }

    /// <summary>The blob holding the raw bytes: the message's own, or a pack shared with other messages (<see cref="Pack"/>).</summary>
    public required string BlobName { get; init; }

    public required long RawLength { get; init; }

    /// <summary>Where the bytes lie when the blob is a pack of several messages; null when the blob is the message's own.</summary>
    public SpoolPackPlace? Pack { get; init; }

    /// <summary>RFC 1939 size: octets RETR sends (see <see cref="Ingest.IngestFigures.Pop3Size"/>).</summary>
    public required long Pop3Size { get; init; }

    public required string Sha256 { get; init; }
    public required string DedupKey { get; init; }
    public required string SourceAccount { get; init; }
    public required string SourceKey { get; init; }
    public required DateTimeOffset ReceivedAt { get; init; }
    public required MessageSummary Summary { get; init; }
}

/// <summary>
/// What an index of a mailbox needs of a message (the POP3 edge's STAT, LIST, UIDL and cache), read without the
/// header summary.
/// </summary>
/// <remarks>
/// A <c>BlobOffset</c> is where the message starts in its blob when the blob is a pack; null when the blob is the message's
/// own. <c>BareCrAsCrlf</c>: the row's <c>Pop3Size</c> may count a bare CR as CRLF (size rule 1, rows written before rule 2
/// whose size is larger than their length), so the edge sends a bare CR of this message as CRLF to match it.
/// The SHA-256 is held as its bytes (<see cref="Digest"/>); <see cref="Sha256"/> gives it as hex.
/// </remarks>
public sealed record SpoolIndexEntry
{
    private readonly string? _unreadableSha256;

    public SpoolIndexEntry(string MessageKey, string Uidl, long Pop3Size, long RawLength, string Sha256, string BlobName, long? BlobOffset = null, bool BareCrAsCrlf = false)
    {
        this.MessageKey = MessageKey;
        this.Uidl = Uidl;
        this.Pop3Size = Pop3Size;
        this.RawLength = RawLength;
        this.Sha256 = Sha256;
        this.BlobName = BlobName;
        this.BlobOffset = BlobOffset;
        this.BareCrAsCrlf = BareCrAsCrlf;
    }

    public string MessageKey { get; init; }

    public string Uidl { get; init; }

    public long Pop3Size { get; init; }

    public long RawLength { get; init; }

    /// <summary>
    /// The SHA-256 of the raw bytes in lower-case hex (made on each read). A value that is no SHA-256 (a damaged row) is
    /// kept as it was given (empty for none), and no bytes are ever proven against it.
    /// </summary>
    public string Sha256
    {
        get => _unreadableSha256 ?? Digest.ToString();
        init
        {
            var readable = Sha256Digest.TryParse(value, out var digest);
            Digest = digest;
            _unreadableSha256 = readable ? null : value ?? string.Empty;
        }
    }

    /// <summary>The SHA-256 as bytes; meaningless unless <see cref="HasDigest"/>.</summary>
    public Sha256Digest Digest { get; private init; }

    /// <summary>Whether <see cref="Sha256"/> was a SHA-256 at all.</summary>
    public bool HasDigest => _unreadableSha256 is null;

    public string BlobName { get; init; }

    public long? BlobOffset { get; init; }

    public bool BareCrAsCrlf { get; init; }
}

/// <summary>
/// A message's place in a pack: a write-once blob holding the bytes of several small messages one after the other
/// (one storage request for many messages). <paramref name="FirstKey"/> and <paramref name="LastKey"/> bound the keys of
/// every message committed from that pack, so whether any of them is left is one short range query.
/// </summary>
public sealed record SpoolPackPlace(long Offset, string FirstKey, string LastKey);
