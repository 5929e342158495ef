using System.Security.Cryptography;
using CloudSpool.Core.Spool;
using CloudSpool.Edge;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.Edge.Tests;

/// <summary>
/// The edge's blob cache as pure logic over a spool in memory: how large it may grow, and which files a scan (one
/// client reading the whole spool once) may evict. Its storage side is tested against Azurite in the edge tests.
/// </summary>
public sealed class BlobCacheTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("cloudspool-cache-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>Messages by blob name, served whole.</summary>
    private sealed class MemorySpool : ISpoolReader
    {
        public Dictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);
        public int Reads { get; private set; }

        /// <summary>When set, the next read waits for it and fails (a storage error after a while).</summary>
        public TaskCompletionSource? FailNext { get; set; }

        public async Task<Stream> OpenContentAsync(string blobName, long? offset, long length, CancellationToken cancellationToken)
        {
            if (FailNext is { } fail)
            {
                FailNext = null;
                await fail.Task;
                throw new IOException("storage failed");
            }
            return Open(blobName, offset, length);
        }

        private Stream Open(string blobName, long? offset, long length)
        {
            lock (Blobs)
                Reads++;
            var blob = Blobs[blobName];
            return offset is { } at
                ? new MemoryStream(blob, (int)at, (int)Math.Min(length, blob.Length - at), writable: false)
                : new MemoryStream(blob, writable: false);
        }

        public IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken) => throw new NotSupportedException();
        public IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) => throw new NotSupportedException();
        public Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    private static SpoolIndexEntry Put(MemorySpool spool, int n, int size = 1000)
    {
        var bytes = new byte[size];
        if (size > 4096)
            new Random(n).NextBytes(bytes);
        BitConverter.TryWriteBytes(bytes, n);
        var sha = Convert.ToHexStringLower(SHA256.HashData(bytes));
        spool.Blobs["b" + n] = bytes;
        return new SpoolIndexEntry($"k{n:D6}", "u" + n, size, size, sha, "b" + n);
    }

    private static async Task ReadAsync(BlobCache cache, SpoolIndexEntry entry)
    {
        await using var stream = await cache.OpenAsync(entry, CancellationToken.None);
        await stream.CopyToAsync(Stream.Null);
    }

    [Theory]
    [InlineData(10_000L, 0L, 0.5, 2_000L, 5_000L)]   // half of the disk's space, the reserve not reached
    [InlineData(10_000L, 6_000L, 0.5, 2_000L, 8_000L)] // its own files count as space it may keep
    [InlineData(3_000L, 0L, 0.5, 2_000L, 1_000L)]    // the reserve wins: 2,000 always stay free
    [InlineData(1_000L, 0L, 0.5, 2_000L, 0L)]        // a disk fuller than the reserve: no cache at all
    [InlineData(-5L, 100L, 0.9, 0L, 90L)]            // a disk that reports nonsense still leaves the cache its own
    public void A_disk_sized_cache_takes_its_share_and_leaves_the_reserve(long free, long cached, double share, long reserve, long limit) =>
        Assert.Equal(limit, new CacheSizing(null, share, reserve).LimitFor(free, cached));

    [Theory]
    [InlineData(0L, new long[] { 0 })]
    [InlineData(4L << 20, new long[] { 4L << 20 })]                             // at the threshold: one request
    [InlineData((4L << 20) + 1, new long[] { 2L << 20, 2L << 20, 1 })]          // past it: 2 MiB ranges, the last takes the rest
    [InlineData(9_000_000L, new long[] { 2L << 20, 2L << 20, 2L << 20, 2L << 20, 9_000_000L - (8L << 20) })]
    public void A_large_message_is_planned_as_ranges_that_cover_it_once(long length, long[] lengths)
    {
        var plan = RangedDownload.Plan(length);
        Assert.Equal(lengths, plan.Select(r => r.Length));
        // Back to back from 0: every byte in exactly one range.
        Assert.Equal(plan.Select(r => r.Offset), plan.Select((r, i) => plan.Take(i).Sum(p => p.Length)));
        Assert.Equal(length, plan.Sum(r => r.Length));
    }

    [Fact]
    public async Task A_large_message_is_fetched_in_ranges_and_proven_whole()
    {
        var spool = new MemorySpool();
        using var cache = new BlobCache(_folder, CacheSizing.Fixed(64L << 20), spool, NullLogger.Instance);
        var entry = Put(spool, 7, size: 9_000_000);
        await using (var stream = await cache.OpenAsync(entry, CancellationToken.None))
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.Equal(spool.Blobs["b7"], copy.ToArray());
        }
        Assert.Equal(5, spool.Reads);

        // One range with other bytes (the blob changed in storage): refused, and nothing is published.
        var damaged = Put(spool, 8, size: 9_000_000);
        spool.Blobs["b8"][5_000_000] ^= 0x20;
        await Assert.ThrowsAsync<InvalidDataException>(() => cache.OpenAsync(damaged, CancellationToken.None));
        Assert.False(cache.Contains(damaged));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_folder, "tmp")));
    }

    [Fact]
    public async Task An_entry_whose_sha_is_no_sha256_is_never_served_and_one_in_capitals_is_proven_as_before()
    {
        var spool = new MemorySpool();
        using var cache = new BlobCache(_folder, CacheSizing.Fixed(64L << 20), spool, NullLogger.Instance);
        var entry = Put(spool, 1);

        await Assert.ThrowsAsync<InvalidDataException>(() => cache.OpenAsync(entry with { Sha256 = "damaged" }, CancellationToken.None));
        Assert.Equal(0, cache.Count);

        await ReadAsync(cache, entry with { Sha256 = entry.Sha256.ToUpperInvariant() });
        Assert.True(cache.Contains(entry));
    }

    [Fact]
    public async Task A_cached_copy_survives_a_restart_and_a_file_named_by_no_sha256_is_removed()
    {
        var spool = new MemorySpool();
        var entry = Put(spool, 1);
        using (var first = new BlobCache(_folder, CacheSizing.Fixed(64L << 20), spool, NullLogger.Instance))
            await ReadAsync(first, entry);
        var stray = Path.Combine(_folder, "zz", "not-a-sha.eml");
        Directory.CreateDirectory(Path.GetDirectoryName(stray)!);
        File.WriteAllText(stray, "stray");

        using var again = new BlobCache(_folder, CacheSizing.Fixed(64L << 20), spool, NullLogger.Instance);

        Assert.True(again.Contains(entry));
        Assert.Equal(1, again.Count);
        Assert.False(File.Exists(stray));
        var reads = spool.Reads;
        await ReadAsync(again, entry);
        Assert.Equal(reads, spool.Reads); // served from the copy, proven again, not fetched
    }

    [Fact]
    public void Pack_neighbours_are_grouped_into_runs_within_the_gap_and_the_span()
    {
        static SpoolIndexEntry Member(string blob, long offset, long length) =>
            new($"k{blob}{offset}", "u", length, length, "00", blob, offset);
        var own = new SpoolIndexEntry("own", "u", 10, 10, "00", "own.eml");
        var a = new[] { Member("p1", 0, 100), Member("p1", 100, 100), Member("p1", 250, 100), Member("p1", 70_000, 100) };
        var b = new[] { Member("p2", 0, 100), Member("p2", 100, 100) };

        var runs = PackRuns.Group([a[1], own, a[0], b[0], a[2], a[3], b[1]], maxGap: 64 * 1024, maxSpan: 1_000);
        // a[0..2] back to back or with a small gap; a[3] too far; the blob of its own alone; another pack apart.
        Assert.Equal([[a[0], a[1], a[2]], [own], [b[0], b[1]], [a[3]]], runs.Select(r => r.ToArray()).ToArray());

        // The span bounds a run: 250 bytes allowed, so a[2] (ending at 350) starts a new one.
        Assert.Equal([[a[0], a[1]], [a[2]]], PackRuns.Group(a[..3], maxGap: 64 * 1024, maxSpan: 250).Select(r => r.ToArray()).ToArray());
    }

    [Fact]
    public async Task A_session_waiting_for_a_pack_read_that_fails_fetches_its_message_on_its_own()
    {
        var spool = new MemorySpool();
        using var cache = new BlobCache(_folder, CacheSizing.Fixed(1L << 20), spool, NullLogger.Instance);
        // Three members back to back in one pack.
        var members = Enumerable.Range(0, 3).Select(n => Put(spool, n)).ToList();
        spool.Blobs["pack"] = [.. members.SelectMany(m => spool.Blobs[m.BlobName])];
        var run = members.Select((m, i) => m with { BlobName = "pack", BlobOffset = i * 1000L }).ToList();

        var fail = new TaskCompletionSource();
        spool.FailNext = fail;
        var reading = cache.PrefetchRunAsync(run);
        var open = cache.OpenAsync(run[1], CancellationToken.None); // joins the run's read
        Assert.False(open.IsCompleted);
        fail.SetResult();
        await reading;

        await using var stream = await open;
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        Assert.Equal(spool.Blobs["b1"], copy.ToArray());
        Assert.Equal(1, spool.Reads); // its own read; the run's failed
        Assert.False(cache.Contains(run[0]));
    }

    [Fact]
    public void A_fixed_cache_keeps_its_size_whatever_the_disk()
    {
        Assert.Equal(5_000, CacheSizing.Fixed(5_000).LimitFor(0, 0));
        Assert.Equal("50 % of the disk, 2048 MiB kept free", new CacheSizing(null, 0.5, 2L << 30).ToString());
        Assert.Equal("1024 MiB", CacheSizing.Fixed(1L << 30).ToString());
    }

    [Fact]
    public void A_disk_sized_cache_measures_the_disk_of_its_folder()
    {
        using var cache = new BlobCache(_folder, new CacheSizing(null, 0.5, 0), new MemorySpool(), NullLogger.Instance);
        var free = new DriveInfo(_folder).AvailableFreeSpace;
        Assert.InRange(cache.LimitBytes, free / 2 - (64L << 20), free / 2 + (64L << 20));
    }

    [Fact]
    public async Task A_full_download_by_one_client_does_not_evict_what_is_read_again_and_again()
    {
        var spool = new MemorySpool();
        // Room for 20 messages of 1,000 bytes (each well under a quarter of the cache, so each is kept).
        using var cache = new BlobCache(_folder, CacheSizing.Fixed(20_000), spool, NullLogger.Instance);
        var daily = Enumerable.Range(0, 5).Select(n => Put(spool, n)).ToList();
        foreach (var entry in daily)
        {
            await ReadAsync(cache, entry); // fetched
            await ReadAsync(cache, entry); // read again: protected
        }
        Assert.Equal((5, 5), (cache.Hits, cache.Misses));

        // Another client downloads a spool three times the cache's size, each message once: half of them fetched on
        // demand, half read ahead of the client (a fill ahead of time is not a read, so its one read does not protect it).
        foreach (var n in Enumerable.Range(100, 60))
        {
            var entry = Put(spool, n);
            if (n % 2 == 0)
                await cache.PrefetchAsync(entry);
            await ReadAsync(cache, entry);
        }

        Assert.All(daily, entry => Assert.True(cache.Contains(entry), $"{entry.MessageKey} was evicted by the scan"));
        Assert.InRange(cache.Bytes, 1, 20_000);
        var readsBefore = spool.Reads;
        foreach (var entry in daily)
            await ReadAsync(cache, entry);
        Assert.Equal(readsBefore, spool.Reads);
        var figures = cache.Figures();
        Assert.Equal((40L, 35L, 20_000L), (figures.Hits, figures.Misses, figures.LimitBytes));
        Assert.Contains("hit rate 53 % (40 of 75 reads)", figures.Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_protected_segment_keeps_to_its_share_and_yields_its_oldest()
    {
        var spool = new MemorySpool();
        using var cache = new BlobCache(_folder, CacheSizing.Fixed(10_000), spool, NullLogger.Instance);
        // Ten messages read twice each: the protected segment may hold eight of them.
        var entries = Enumerable.Range(0, 10).Select(n => Put(spool, n)).ToList();
        foreach (var entry in entries)
        {
            await ReadAsync(cache, entry);
            await ReadAsync(cache, entry);
        }
        // One more message: the cache is over its size and evicts from probation first, the two oldest demoted ones.
        await ReadAsync(cache, Put(spool, 50));

        Assert.False(cache.Contains(entries[0]));
        Assert.All(entries.Skip(2), entry => Assert.True(cache.Contains(entry)));
        Assert.True(cache.Bytes <= 10_000);
    }

    [Fact]
    public async Task The_figures_are_written_for_status_in_another_process()
    {
        var spool = new MemorySpool();
        var cache = new BlobCache(_folder, CacheSizing.Fixed(20_000), spool, NullLogger.Instance);
        await ReadAsync(cache, Put(spool, 1));
        cache.Dispose();

        var saved = System.Text.Json.JsonSerializer.Deserialize<CacheFigures>(File.ReadAllText(BlobCache.FiguresPath(_folder)))!;
        Assert.Equal((1000L, 1, 20_000L, 0L, 1L), (saved.Bytes, saved.Messages, saved.LimitBytes, saved.Hits, saved.Misses));
    }

    [Fact]
    public async Task A_proven_copy_is_read_to_its_proven_length_and_a_shortened_one_fails_read_asynchronously_too()
    {
        var path = Path.Combine(_folder, "copy");
        await File.WriteAllBytesAsync(path, Enumerable.Range(0, 200_000).Select(i => (byte)i).ToArray());

        // Grown after its proof: the reader stops at the proven length, in chunks as the POP3 transfer asks.
        await using (var grown = new ExactLengthStream(ProvenCopy.OpenRead(path), 150_000))
        {
            var buffer = new byte[64 * 1024];
            var read = new List<int>();
            int n;
            while ((n = await grown.ReadAsync(buffer)) > 0)
                read.Add(n);
            Assert.Equal([65_536, 65_536, 18_928], read);
        }

        // Shortened after its proof: the read that finds the end early throws, never a short copy taken for the whole.
        await using (var shortened = new ExactLengthStream(ProvenCopy.OpenRead(path), 250_000))
        {
            var buffer = new byte[64 * 1024];
            var ex = await Assert.ThrowsAsync<EndOfStreamException>(async () =>
            {
                while (await shortened.ReadAsync(buffer) > 0)
                {
                }
            });
            Assert.Contains("50000 bytes short", ex.Message);
        }

        // A cancelled read reads nothing.
        await using var cancelled = new ExactLengthStream(ProvenCopy.OpenRead(path), 200_000);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.ReadAsync(new byte[10], new CancellationToken(canceled: true)).AsTask());
        Assert.Equal(10, await cancelled.ReadAsync(new byte[10]));
    }
}
