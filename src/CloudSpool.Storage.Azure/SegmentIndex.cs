using System.Text;

namespace CloudSpool.Storage.Azure;

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
