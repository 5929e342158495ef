using System.Buffers.Binary;
using System.Globalization;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

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
