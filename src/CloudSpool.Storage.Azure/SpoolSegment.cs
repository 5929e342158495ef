using System.Buffers.Binary;
using System.Globalization;
using System.Text;
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

/// <summary>
/// The binary index of a segment row (property <c>Index</c>): the members' index fields, about 65 bytes a message where a
/// row of its own took about 2,000 bytes of the table database (see docs/design.md, "Storage layout").
/// </summary>
/// <remarks>
/// Format 1: a version byte, the POP3 size rule, the packs (name and key range, UTF-8, length-prefixed), the member count,
/// then per member: commit ticks (the first as is, then the increase over the previous one), the SHA-256 (32 bytes), the
/// first 20 bytes of the dedup key, raw length, POP3 size, pack number + 1 (0: a blob of its own) and, in a pack, the
/// offset. Numbers are unsigned LEB128. The format is stored: a change needs a new version byte and a reader for the old.
/// </remarks>
internal static class SegmentIndex
{
    public const byte Version = 1;
    private const int ShaBytes = 32;
    private const int DedupBytes = 20;

    public static byte[] Encode(int sizeRule, IReadOnlyList<SegmentPack> packs, IReadOnlyList<SegmentMember> members)
    {
        var buffer = new List<byte>(16 + packs.Count * 128 + members.Count * 72) { Version, checked((byte)sizeRule) };
        WriteNumber(buffer, packs.Count);
        foreach (var pack in packs)
        {
            WriteText(buffer, pack.BlobName);
            WriteText(buffer, pack.FirstKey);
            WriteText(buffer, pack.LastKey);
        }
        WriteNumber(buffer, members.Count);
        long previous = 0;
        foreach (var m in members)
        {
            if (m.Ticks <= previous)
                throw new ArgumentException("segment members must be in increasing key order", nameof(members));
            WriteNumber(buffer, m.Ticks - previous);
            previous = m.Ticks;
            buffer.AddRange(Hex(m.Sha256, ShaBytes));
            buffer.AddRange(Hex(m.DedupPrefix, DedupBytes));
            WriteNumber(buffer, m.RawLength);
            WriteNumber(buffer, m.Pop3Size);
            WriteNumber(buffer, m.Pack + 1);
            if (m.Pack >= 0)
                WriteNumber(buffer, m.Offset);
        }
        return [.. buffer];
    }

    public static (int SizeRule, IReadOnlyList<SegmentPack> Packs, IReadOnlyList<SegmentMember> Members) Decode(ReadOnlySpan<byte> data)
    {
        var at = 0;
        if (data.Length < 2 || data[0] != Version)
            throw new InvalidDataException($"segment index of an unknown format ({(data.Length == 0 ? "empty" : $"version {data[0]}")})");
        int sizeRule = data[1];
        at = 2;
        var packCount = checked((int)ReadNumber(data, ref at));
        var packs = new SegmentPack[packCount];
        for (var i = 0; i < packCount; i++)
            packs[i] = new SegmentPack(ReadText(data, ref at), ReadText(data, ref at), ReadText(data, ref at));
        var count = checked((int)ReadNumber(data, ref at));
        var members = new SegmentMember[count];
        long ticks = 0;
        for (var i = 0; i < count; i++)
        {
            ticks = checked(ticks + ReadNumber(data, ref at));
            var sha = Take(data, ref at, ShaBytes);
            var dedup = Take(data, ref at, DedupBytes);
            var raw = ReadNumber(data, ref at);
            var pop3 = ReadNumber(data, ref at);
            var pack = checked((int)ReadNumber(data, ref at)) - 1;
            if (pack >= packCount)
                throw new InvalidDataException($"segment member {i} names pack {pack} of {packCount}");
            var offset = pack >= 0 ? ReadNumber(data, ref at) : 0;
            members[i] = new SegmentMember(ticks, Convert.ToHexStringLower(sha), Convert.ToHexStringLower(dedup), raw, pop3, pack, offset);
        }
        if (at != data.Length)
            throw new InvalidDataException($"segment index has {data.Length - at} bytes after its last member");
        return (sizeRule, packs, members);
    }

    /// <summary>The members removed from a segment (property <c>Gone</c>): a bit per member, in order.</summary>
    public static byte[] EncodeGone(IReadOnlyCollection<int> gone, int count)
    {
        var bits = new byte[(count + 7) / 8];
        foreach (var i in gone)
            bits[i / 8] |= (byte)(1 << (i % 8));
        return bits;
    }

    public static HashSet<int> DecodeGone(byte[]? bits)
    {
        var gone = new HashSet<int>();
        if (bits is null)
            return gone;
        for (var i = 0; i < bits.Length * 8; i++)
        {
            if ((bits[i / 8] & (1 << (i % 8))) != 0)
                gone.Add(i);
        }
        return gone;
    }

    private static byte[] Hex(string hex, int bytes)
    {
        if (hex.Length < bytes * 2)
            throw new ArgumentException($"'{hex}' is shorter than {bytes * 2} hex characters");
        var value = Convert.FromHexString(hex.AsSpan(0, bytes * 2));
        if (!string.Equals(Convert.ToHexStringLower(value), hex[..(bytes * 2)], StringComparison.Ordinal))
            throw new ArgumentException($"'{hex}' is not lower-case hex");
        return value;
    }

    private static void WriteNumber(List<byte> buffer, long value)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(value);
        var v = (ulong)value;
        while (v >= 0x80)
        {
            buffer.Add((byte)(v | 0x80));
            v >>= 7;
        }
        buffer.Add((byte)v);
    }

    private static long ReadNumber(ReadOnlySpan<byte> data, ref int at)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (at >= data.Length)
                throw new InvalidDataException("segment index ends inside a number");
            var b = data[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return value <= long.MaxValue ? (long)value : throw new InvalidDataException("segment index number out of range");
        }
        throw new InvalidDataException("segment index number too long");
    }

    private static void WriteText(List<byte> buffer, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        WriteNumber(buffer, bytes.Length);
        buffer.AddRange(bytes);
    }

    private static string ReadText(ReadOnlySpan<byte> data, ref int at)
    {
        var length = checked((int)ReadNumber(data, ref at));
        return Encoding.UTF8.GetString(Take(data, ref at, length));
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> data, ref int at, int length)
    {
        if (length < 0 || at + length > data.Length)
            throw new InvalidDataException("segment index ends inside a field");
        var slice = data.Slice(at, length);
        at += length;
        return slice;
    }
}

/// <summary>
/// The dedup index of a mailbox in bucket rows: <c>b:{first 3 hex of the dedup key}:{n:D4}</c>, each with property
/// <c>E</c> holding up to <see cref="RowCapacity"/> entries of 28 bytes: the first 16 bytes of the dedup key (a SHA-256:
/// a false match among a billion keys is less likely than 10^-20), the commit ticks of the message that holds it
/// (8 bytes, big-endian) and the first 4 bytes of its SHA-256 (with the ticks, its message key).
/// </summary>
internal static class DedupBuckets
{
    public const int EntryBytes = 28;
    public const int KeyBytes = 16;

    /// <summary>Entries per row: small rows keep the rewrite of an append short, few enough to keep the rows few.</summary>
    public const int RowCapacity = 146;

    public const string RowPrefix = "b:";

    /// <summary>The bucket of a dedup key: 4,096 buckets a mailbox.</summary>
    public static string BucketOf(string dedupKey) => dedupKey[..3];

    public static string RowKey(string bucket, int n) => string.Create(CultureInfo.InvariantCulture, $"{RowPrefix}{bucket}:{n:D4}");

    public static string BucketStart(string bucket) => $"{RowPrefix}{bucket}:";

    /// <summary>The bucket a row belongs to.</summary>
    public static string BucketOfRow(string rowKey) => rowKey[RowPrefix.Length..rowKey.LastIndexOf(':')];

    /// <summary>Every bucket a dedup key (lowercase hex) can fall in.</summary>
    public static IEnumerable<string> All => Enumerable.Range(0, 4096).Select(b => b.ToString("x3", CultureInfo.InvariantCulture));

    public static int RowNumber(string rowKey) => int.Parse(rowKey.AsSpan(rowKey.LastIndexOf(':') + 1), NumberStyles.None, CultureInfo.InvariantCulture);

    public static byte[] KeyOf(string dedupKey) => Convert.FromHexString(dedupKey.AsSpan(0, KeyBytes * 2));

    public static byte[] Entry(string dedupKey, string messageKey)
    {
        if (!SpoolKeys.TryGetTicks(messageKey, out var ticks) || messageKey.Length != 30)
            throw new ArgumentException($"'{messageKey}' is not a message key", nameof(messageKey));
        var entry = new byte[EntryBytes];
        KeyOf(dedupKey).CopyTo(entry, 0);
        BinaryPrimitives.WriteInt64BigEndian(entry.AsSpan(KeyBytes), ticks);
        Convert.FromHexString(messageKey.AsSpan(22, 8)).CopyTo(entry, KeyBytes + 8);
        return entry;
    }

    /// <summary>The message key of the entry for <paramref name="key"/> in <paramref name="entries"/>, or null.</summary>
    public static string? Find(ReadOnlySpan<byte> entries, ReadOnlySpan<byte> key)
    {
        var at = IndexOf(entries, key);
        if (at < 0)
            return null;
        var entry = entries.Slice(at, EntryBytes);
        var ticks = BinaryPrimitives.ReadInt64BigEndian(entry[KeyBytes..]);
        return string.Create(CultureInfo.InvariantCulture, $"m:{ticks:D19}-{Convert.ToHexStringLower(entry[(KeyBytes + 8)..])}");
    }

    /// <summary>The byte offset of the entry for <paramref name="key"/>, or -1.</summary>
    public static int IndexOf(ReadOnlySpan<byte> entries, ReadOnlySpan<byte> key)
    {
        for (var at = 0; at + EntryBytes <= entries.Length; at += EntryBytes)
        {
            if (entries.Slice(at, KeyBytes).SequenceEqual(key))
                return at;
        }
        return -1;
    }
}
