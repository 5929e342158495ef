using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>What the index of a segment row holds of one message: what the edge's STAT, LIST, UIDL and cache need.</summary>
/// <param name="Ticks">The commit ticks of its key (with the first 8 hex of <paramref name="Sha256"/>, the key itself).</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the raw bytes.</param>
/// <param name="DedupPrefix">The first 40 hex characters of its dedup key: its UIDL, and where its dedup entry lies.</param>
/// <param name="RawLength">Its length in octets.</param>
/// <param name="Pop3Size">Its RFC 1939 size (by the segment's size rule).</param>
/// <param name="Pack">Index into the segment's packs, or -1 when the message has a blob of its own.</param>
/// <param name="Offset">Where its bytes start in the pack (0 for a blob of its own).</param>
internal sealed record SegmentMember(long Ticks, string Sha256, string DedupPrefix, long RawLength, long Pop3Size, int Pack, long Offset)
{
    public string MessageKey => SpoolKeys.Message(Ticks, Sha256);
}

/// <summary>A pack some members of a segment lie in, with the key range of every message committed from it.</summary>
internal sealed record SegmentPack(string BlobName, string FirstKey, string LastKey);
