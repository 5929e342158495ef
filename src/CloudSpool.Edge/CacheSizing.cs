namespace CloudSpool.Edge;

/// <summary>How large the blob cache may grow: a fixed size, or a share of its disk with a reserve always left free.</summary>
/// <param name="FixedBytes">A fixed limit; null sizes the cache by the disk.</param>
/// <param name="DiskShare">The share of the disk's space (free plus what the cache holds) the cache may use.</param>
/// <param name="ReserveBytes">The disk space the cache always leaves free.</param>
public sealed record CacheSizing(long? FixedBytes, double DiskShare, long ReserveBytes)
{
    public static CacheSizing Fixed(long bytes) => new(bytes, 1, 0);

    /// <summary>
    /// The limit now: the fixed size; else <see cref="DiskShare"/> of the free bytes plus what the cache holds (its own
    /// files are space it may keep), and never so much that less than <see cref="ReserveBytes"/> would stay free.
    /// </summary>
    public long LimitFor(long freeBytes, long cachedBytes)
    {
        if (FixedBytes is { } bytes)
            return bytes;
        var usable = Math.Max(0, freeBytes) + Math.Max(0, cachedBytes);
        return Math.Max(0, Math.Min((long)(usable * DiskShare), usable - ReserveBytes));
    }

    /// <summary>The free bytes of <paramref name="directory"/>'s disk; 0 when it cannot say (the cache then gets no more than it holds).</summary>
    public static long FreeBytes(string directory)
    {
        try
        {
            return new DriveInfo(directory).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return 0;
        }
    }

    /// <summary>"1024 MiB" or "50 % of the disk, 2048 MiB kept free".</summary>
    public override string ToString() => FixedBytes is { } bytes
        ? $"{bytes >> 20} MiB"
        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{DiskShare * 100:0} % of the disk, {ReserveBytes >> 20} MiB kept free");
}

/// <summary>What the blob cache holds and how well it serves.</summary>
/// <param name="Bytes">Bytes held.</param>
/// <param name="Messages">Messages held.</param>
/// <param name="LimitBytes">The most it may hold now.</param>
/// <param name="Sizing">How the limit is set, in words.</param>
/// <param name="Hits">Reads served from the cache since the edge started.</param>
/// <param name="Misses">Reads fetched from storage since the edge started.</param>
/// <param name="At">When these figures were taken.</param>
public sealed record CacheFigures(long Bytes, int Messages, long LimitBytes, string Sizing, long Hits, long Misses, DateTimeOffset At)
{
    /// <summary>"12.3 of 2048.0 MiB (512 messages; limit 50 % of the disk, 2048 MiB kept free), hit rate 87 % (870 of 1000 reads)".</summary>
    public string Describe() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Bytes / 1048576.0:0.0} of {LimitBytes / 1048576.0:0.0} MiB ({Messages} messages; limit {Sizing}), ")
        + (Hits + Misses == 0
            ? "no reads yet"
            : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"hit rate {100.0 * Hits / (Hits + Misses):0} % ({Hits} of {Hits + Misses} reads)"));
}
