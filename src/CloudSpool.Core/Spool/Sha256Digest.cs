using System.Buffers;
using System.Buffers.Binary;

namespace CloudSpool.Core.Spool;

/// <summary>
/// A SHA-256 as its 32 bytes, held in four words: the edge keeps one for every message it indexes, and as 64 hex
/// characters it would take 152 bytes of string rather than 32.
/// </summary>
public readonly struct Sha256Digest : IEquatable<Sha256Digest>
{
    private readonly ulong _a, _b, _c, _d;

    private Sha256Digest(ulong a, ulong b, ulong c, ulong d) => (_a, _b, _c, _d) = (a, b, c, d);

    /// <summary>The digest of 32 bytes of a hash.</summary>
    /// <exception cref="ArgumentException">Not 32 bytes.</exception>
    public static Sha256Digest FromBytes(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != 32)
            throw new ArgumentException($"a SHA-256 is 32 bytes, not {hash.Length}", nameof(hash));
        return new Sha256Digest(BinaryPrimitives.ReadUInt64BigEndian(hash), BinaryPrimitives.ReadUInt64BigEndian(hash[8..]),
            BinaryPrimitives.ReadUInt64BigEndian(hash[16..]), BinaryPrimitives.ReadUInt64BigEndian(hash[24..]));
    }

    /// <summary>Reads 64 hex digits (either case); false for anything else.</summary>
    public static bool TryParse(ReadOnlySpan<char> hex, out Sha256Digest digest)
    {
        digest = default;
        Span<byte> bytes = stackalloc byte[32];
        if (hex.Length != 64 || Convert.FromHexString(hex, bytes, out _, out var written) != OperationStatus.Done || written != 32)
            return false;
        digest = FromBytes(bytes);
        return true;
    }

    /// <summary>Writes the 32 bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _a);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _b);
        BinaryPrimitives.WriteUInt64BigEndian(destination[16..], _c);
        BinaryPrimitives.WriteUInt64BigEndian(destination[24..], _d);
    }

    /// <summary>Lower-case hex, as stored and logged everywhere.</summary>
    public override string ToString()
    {
        Span<byte> bytes = stackalloc byte[32];
        WriteTo(bytes);
        return Convert.ToHexStringLower(bytes);
    }

    public bool Equals(Sha256Digest other) => _a == other._a && _b == other._b && _c == other._c && _d == other._d;

    public override bool Equals(object? obj) => obj is Sha256Digest other && Equals(other);

    /// <summary>A hash's bits are spread already: its first word will do.</summary>
    public override int GetHashCode() => (int)(_a ^ (_a >> 32));

    public static bool operator ==(Sha256Digest left, Sha256Digest right) => left.Equals(right);

    public static bool operator !=(Sha256Digest left, Sha256Digest right) => !left.Equals(right);
}
