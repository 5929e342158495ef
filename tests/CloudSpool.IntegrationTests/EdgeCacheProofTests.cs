using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Edge;
using CloudSpool.TestSupport.Fixtures;
using MailKit.Net.Pop3;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// Issue 16: the edge proves a copy before it serves it. Cache files damaged while the edge was stopped or while it
/// runs, and messages damaged in storage itself: every RETR and TOP gives the exact bytes or -ERR [SYS/TEMP], and a
/// copy that fails once bytes are on the wire ends the session without the terminating line.
/// </summary>
public sealed partial class EdgeMirrorTests
{
    private enum Damage
    {
        Emptied,
        Halved,
        Overwritten,
    }

    private string CacheFileOf(SpoolIndexEntry entry) => Path.Combine(_state, "cache", entry.Sha256[..2], entry.Sha256 + ".eml");

    /// <summary>Damages a file the way a power cut or a disk fault does; <paramref name="keepTime"/> puts its write time back.</summary>
    private static void Spoil(string path, Damage damage, bool keepTime)
    {
        var written = File.GetLastWriteTimeUtc(path);
        var bytes = File.ReadAllBytes(path);
        switch (damage)
        {
            case Damage.Emptied:
                bytes = [];
                break;
            case Damage.Halved:
                bytes = bytes[..(bytes.Length / 2)];
                break;
            default:
                for (var i = 0; i < 8; i++)
                    bytes[(bytes.Length / 2) + i] ^= 0x5A;
                break;
        }
        File.WriteAllBytes(path, bytes);
        if (keepTime)
            File.SetLastWriteTimeUtc(path, written);
    }

    /// <summary>Replaces a message's stored blob with damaged bytes.</summary>
    private async Task SpoilBlobAsync(SpoolMessage message, Func<byte[], byte[]> spoil)
    {
        var blob = _spool.Runtime.Storage.Spool.GetBlobClient(message.BlobName);
        var bytes = (await blob.DownloadContentAsync()).Value.Content.ToArray();
        await blob.UploadAsync(new BinaryData(spoil(bytes)), overwrite: true);
    }

    /// <summary>A RETR answer on the wire for a test message (CRLF line ends, no line starting with a dot).</summary>
    private static byte[] RetrWire(byte[] raw) => [.. raw, .. ".\r\n"u8];

    /// <summary>A TOP n 0 answer on the wire for a test message: the header, the blank line, the terminator.</summary>
    private static byte[] TopWire(byte[] raw) => [.. raw.AsSpan(0, raw.AsSpan().IndexOf("\r\n\r\n"u8) + 4), .. ".\r\n"u8];

    private async Task<List<byte[]>> PutRawsAsync(params int[] bodyBytes)
    {
        var raws = bodyBytes.Select((size, i) => TestMail.Create($"message {i}", bodyBytes: size)).ToList();
        foreach (var raw in raws)
            await _spool.PutAsync("alice", raw);
        return raws;
    }

    [Fact]
    public async Task Cache_files_damaged_while_the_edge_was_stopped_are_proven_dropped_and_read_from_storage_again()
    {
        // Three of each damage, at three sizes: within the first 64 KiB chunk, and over several.
        var raws = await PutRawsAsync(100, 100, 100, 40_000, 40_000, 40_000, 150_000, 150_000, 150_000);
        var first = NewEdge(_spool.Runtime, Options(_state));
        first.Start();
        await WaitForAsync(() => first.Mirror.IndexOf("alice").Snapshot.Count == 9 && first.Mirror.Cache!.Count == 9, "the prefetch of every message");
        var entries = first.Mirror.IndexOf("alice").Snapshot;
        await first.DisposeAsync();
        // The write times are put back: the proof at a start must not trust them.
        for (var i = 0; i < 9; i++)
            Spoil(CacheFileOf(entries[i]), (Damage)(i % 3), keepTime: true);

        var edge = NewEdge(_spool.Runtime, Options(_state, prefetch: false));
        var port = await ServeAsync(edge);
        await using (var raw = await RawPop3Client.LogInAsync(port, "alice", "secret"))
        {
            for (var i = 0; i < 9; i++)
            {
                // Half of them are first asked for with TOP, half with RETR.
                if (i % 2 == 0)
                    Assert.Equal(TopWire(raws[i]), await raw.MultiLineAsync($"TOP {i + 1} 0"));
                Assert.Equal(RetrWire(raws[i]), await raw.MultiLineAsync($"RETR {i + 1}"));
                Assert.Equal(TopWire(raws[i]), await raw.MultiLineAsync($"TOP {i + 1} 0"));
            }
        }
        await WaitForAsync(() => edge.Maildrops.OpenSessions == 0, "the raw session to end");
        using (var client = await ConnectAsync(port, "alice"))
        {
            for (var i = 0; i < 9; i++)
                Assert.Equal(raws[i], await RetrieveRawAsync(client, i));
            await client.DisconnectAsync(quit: true);
        }
        // The damaged copies were replaced by proven ones.
        for (var i = 0; i < 9; i++)
            Assert.Equal(raws[i], await File.ReadAllBytesAsync(CacheFileOf(entries[i])));
        Assert.Equal(raws.Sum(r => (long)r.Length), edge.Mirror.Cache!.Bytes);
    }

    [Fact]
    public async Task A_cache_file_damaged_after_its_proof_is_proven_again_and_never_served_short()
    {
        // 24 MB: more than loopback buffers hold, so the edge is still reading the file when it is cut.
        var raws = await PutRawsAsync(100, 150_000, 24_000_000);
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, CacheBytes = 128L << 20 });
        edge.Start();
        await WaitForAsync(() => edge.Mirror.IndexOf("alice").Snapshot.Count == 3 && edge.Mirror.Cache!.Count == 3, "the prefetch of every message");
        var entries = edge.Mirror.IndexOf("alice").Snapshot;
        var port = await ServeAsync(edge);
        await using (var raw = await RawPop3Client.LogInAsync(port, "alice", "secret"))
        {
            for (var i = 0; i < 3; i++)
                Assert.Equal(RetrWire(raws[i]), await raw.MultiLineAsync($"RETR {i + 1}"));

            // Damaged after the proof: a new length (even with the old write time) or a new write time proves it again.
            Spoil(CacheFileOf(entries[0]), Damage.Halved, keepTime: true);
            Spoil(CacheFileOf(entries[1]), Damage.Overwritten, keepTime: false);
            Assert.Equal(TopWire(raws[0]), await raw.MultiLineAsync("TOP 1 0"));
            Assert.Equal(RetrWire(raws[0]), await raw.MultiLineAsync("RETR 1"));
            Assert.Equal(RetrWire(raws[1]), await raw.MultiLineAsync("RETR 2"));

            // Cut while it is being sent: the answer never gets its terminating line, the session ends.
            Assert.StartsWith("+OK", await raw.CommandAsync("RETR 3"));
            using (var file = new FileStream(CacheFileOf(entries[2]), FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete))
                file.SetLength(1);
            await Assert.ThrowsAsync<IOException>(() => raw.ReadMultiLineAsync());
        }
        await WaitForAsync(() => edge.Maildrops.OpenSessions == 0, "the cut session to end");
        await using (var raw = await RawPop3Client.LogInAsync(port, "alice", "secret"))
            Assert.Equal(RetrWire(raws[2]), await raw.MultiLineAsync("RETR 3"));
        Assert.Equal(raws[2], await File.ReadAllBytesAsync(CacheFileOf(entries[2])));
    }

    [Fact]
    public async Task A_message_damaged_in_storage_too_gets_sys_temp_and_the_session_goes_on()
    {
        // 1: intact; 2: cached, then its copy and its blob damaged; 3: blob cut in half, never cached; 4: too large for
        // the cache (a quarter of 400 KB), blob with bytes flipped at its end; 5-7: one pack, the middle member damaged.
        var raws = await PutRawsAsync(100, 40_000, 100, 120_000);
        var packed = Enumerable.Range(0, 3).Select(i => TestMail.Create($"packed {i}", bodyBytes: 2_000)).ToList();
        var ingested = packed.Select(r => IngestedMessage.FromBytes(r, "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow)).ToList();
        var slots = await _spool.Runtime.Spool.WritePackAsync("alice", ingested.Zip(packed, (m, r) => (m, (Stream)new MemoryStream(r))).ToList(), CancellationToken.None);
        await _spool.Runtime.Spool.CommitAsync("alice", ingested.Select((m, i) => m with { Pack = slots[i] }).ToList(), CancellationToken.None);
        raws.AddRange(packed);
        var stored = await _spool.ListAsync("alice");
        Assert.Equal(7, stored.Count);
        Assert.NotNull(stored[5].Pack);

        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, CacheBytes = 400_000, Prefetch = false });
        var port = await ServeAsync(edge);
        await using (var raw = await RawPop3Client.LogInAsync(port, "alice", "secret"))
            Assert.Equal(RetrWire(raws[1]), await raw.MultiLineAsync("RETR 2"));
        await WaitForAsync(() => edge.Maildrops.OpenSessions == 0, "the first session to end");
        Spoil(CacheFileOf(edge.Mirror.IndexOf("alice").Snapshot[1]), Damage.Overwritten, keepTime: false);
        await SpoilBlobAsync(stored[1], b => { b[^3] ^= 0x20; return b; });
        await SpoilBlobAsync(stored[2], b => b[..(b.Length / 2)]);
        await SpoilBlobAsync(stored[3], b => { b[^3] ^= 0x20; return b; });
        await SpoilBlobAsync(stored[5], b => { b[(int)stored[5].Pack!.Offset + 10] ^= 0x20; return b; });

        async Task CheckAsync(int port, string login)
        {
            await using var raw = await RawPop3Client.LogInAsync(port, login, "secret");
            foreach (var n in new[] { 2, 3, 4, 6 })
            {
                Assert.StartsWith("-ERR [SYS/TEMP]", await raw.CommandAsync($"TOP {n} 0"));
                Assert.StartsWith("-ERR [SYS/TEMP]", await raw.CommandAsync($"RETR {n}"));
                Assert.StartsWith("+OK", await raw.CommandAsync("NOOP"));
            }
            foreach (var n in new[] { 1, 5, 7 })
            {
                Assert.Equal(TopWire(raws[n - 1]), await raw.MultiLineAsync($"TOP {n} 0"));
                Assert.Equal(RetrWire(raws[n - 1]), await raw.MultiLineAsync($"RETR {n}"));
            }
        }

        await CheckAsync(port, "alice");
        // The same with no cache at all: every message read from Blob, proven before a byte is sent.
        var uncached = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = Path.Combine(_state, "nocache"), CacheBytes = 0, Prefetch = false });
        Assert.Null(uncached.Mirror.Cache);
        await CheckAsync(await ServeAsync(uncached), "alice+nocache");
    }

    [Fact]
    public async Task Opening_a_message_reads_the_next_ones_of_the_listing_ahead_into_the_cache()
    {
        var raws = await PutRawsAsync(100, 200, 300, 400, 500, 600, 700, 800, 900, 1000);
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, CacheBytes = 64L << 20, Prefetch = false, ReadAheadMessages = 3 });
        edge.Start();
        var port = await ServeAsync(edge);
        await using var raw = await RawPop3Client.LogInAsync(port, "alice", "secret");
        var entries = edge.Mirror.IndexOf("alice").Snapshot;
        var cache = edge.Mirror.Cache!;
        Assert.Equal(0, cache.Count);

        Assert.Equal(RetrWire(raws[0]), await raw.MultiLineAsync("RETR 1"));

        // The next three, and no more, come into the cache without being asked for.
        await WaitForAsync(() => cache.Count == 4, "the read-ahead of messages 2-4");
        Assert.All(entries.Take(4), e => Assert.True(cache.Contains(e)));
        Assert.All(entries.Skip(4), e => Assert.False(cache.Contains(e)));
        var misses = cache.Misses;
        for (var i = 1; i < 4; i++)
            Assert.Equal(RetrWire(raws[i]), await raw.MultiLineAsync($"RETR {i + 1}"));
        Assert.Equal(misses, cache.Misses); // served from what was read ahead
        // Walking on keeps the window ahead, filled again in a batch once less than half of it is left (at RETR 3: 5-6).
        await WaitForAsync(() => cache.Count == 6, "the read-ahead of messages 5-6");
        Assert.All(entries.Skip(6), e => Assert.False(cache.Contains(e)));
        // TOP counts as opening too.
        Assert.Equal(TopWire(raws[9]), await raw.MultiLineAsync("TOP 10 0"));
        Assert.Equal(7, cache.Count);
    }

    /// <summary>
    /// Twelve messages of their own blobs, an edge that reads them through a counting reader with a window of
    /// <paramref name="readAheadMessages"/> (no prefetch), and a logged-in session of alice.
    /// </summary>
    private async Task<(List<byte[]> Raws, CountingReader Reader, SpoolEdge Edge, RawPop3Client Session, IReadOnlyList<SpoolIndexEntry> Entries)> ReadAheadSessionAsync(int readAheadMessages)
    {
        var raws = await PutRawsAsync(100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200);
        var reader = new CountingReader(_spool.Runtime.SpoolReader);
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, CacheBytes = 64L << 20, Prefetch = false, ReadAheadMessages = readAheadMessages }, reader);
        edge.Start();
        var port = await ServeAsync(edge);
        var session = await RawPop3Client.LogInAsync(port, "alice", "secret");
        return (raws, reader, edge, session, edge.Mirror.IndexOf("alice").Snapshot);
    }

    [Fact]
    public async Task A_pipelined_run_of_RETR_and_TOP_reads_ahead_the_messages_it_asks_for_not_the_listings_next()
    {
        var (raws, reader, edge, session, entries) = await ReadAheadSessionAsync(readAheadMessages: 3);
        await using var raw = session;
        var cache = edge.Mirror.Cache!;
        bool Read(SpoolIndexEntry entry) => reader.HasRead(entry.BlobName);

        // Message 1's own read is held until the messages the client pipelined after it are being read.
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reader.Before = blob => blob == entries[0].BlobName ? held.Task : Task.CompletedTask;
        await raw.SendAsync("RETR 1\r\nRETR 6\r\nTOP 11 0\r\nRETR 9\r\n");
        try
        {
            await WaitForAsync(() => Read(entries[5]) && Read(entries[10]) && Read(entries[8]), "the read-ahead of messages 6, 11 and 9");
        }
        finally
        {
            held.TrySetResult(); // let go however the wait ends: a fill left waiting would hold the edge's shutdown
        }
        Assert.StartsWith("+OK", await raw.ReadStatusAsync());
        Assert.Equal(RetrWire(raws[0]), await raw.ReadMultiLineAsync());
        Assert.StartsWith("+OK", await raw.ReadStatusAsync());
        Assert.Equal(RetrWire(raws[5]), await raw.ReadMultiLineAsync());
        Assert.StartsWith("+OK", await raw.ReadStatusAsync());
        Assert.Equal(TopWire(raws[10]), await raw.ReadMultiLineAsync());
        Assert.StartsWith("+OK", await raw.ReadStatusAsync());
        Assert.Equal(RetrWire(raws[8]), await raw.ReadMultiLineAsync());

        // Each was read from storage once, and the listing's next messages after 1 (2-4) not at all.
        await WaitForAsync(() => cache.Count == 4, "the cache to hold the four messages read");
        lock (reader.Reads)
        {
            Assert.All(new[] { 0, 5, 8, 10 }, i => Assert.Single(reader.Reads, r => r.Blob == entries[i].BlobName));
            Assert.Equal(4, reader.Reads.Count);
        }
        Assert.All(new[] { 0, 5, 8, 10 }, i => Assert.True(cache.Contains(entries[i])));

        // A client going on in the listing's order after a pipelined run gets the listing's next messages again.
        await raw.SendAsync("RETR 10\r\nRETR 11\r\n");
        Assert.StartsWith("+OK", await raw.ReadStatusAsync());
        Assert.Equal(RetrWire(raws[9]), await raw.ReadMultiLineAsync());
        Assert.StartsWith("+OK", await raw.ReadStatusAsync());
        Assert.Equal(RetrWire(raws[10]), await raw.ReadMultiLineAsync());
        await WaitForAsync(() => cache.Contains(entries[11]), "the read-ahead of message 12");
    }

    [Fact]
    public async Task Picked_messages_are_read_ahead_in_batches_of_at_most_the_window()
    {
        var (raws, reader, _, session, entries) = await ReadAheadSessionAsync(readAheadMessages: 4);
        await using var raw = session;
        bool Read(int index) => reader.HasRead(entries[index].BlobName);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var third = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        reader.Before = blob => blob == entries[0].BlobName ? first.Task : blob == entries[2].BlobName ? third.Task : Task.CompletedTask;
        // The held reads are let go however the test ends: a fill left waiting would hold the edge's shutdown.
        try
        {
            var numbers = new[] { 1, 3, 5, 7, 9, 11 };
            await raw.SendAsync(string.Concat(numbers.Select(n => $"RETR {n}\r\n")));

            // RETR 1 asks for the window's four of the five picked after it (3, 5, 7, 9), not 11.
            await WaitForAsync(() => Read(2) && Read(4) && Read(6) && Read(8), "the read-ahead of messages 3, 5, 7 and 9");
            Assert.False(Read(10));
            first.SetResult();
            Assert.StartsWith("+OK", await raw.ReadStatusAsync());
            Assert.Equal(RetrWire(raws[0]), await raw.ReadMultiLineAsync());
            // RETR 3 (waiting for its held read) still has three of the window outstanding: it asks for nothing.
            await Task.Delay(TimeSpan.FromMilliseconds(500));
            Assert.False(Read(10));
            third.SetResult();
            // RETR 5 has two outstanding, half the window: 11 is asked for.
            await WaitForAsync(() => Read(10), "the read-ahead of message 11");
            foreach (var n in numbers[1..])
            {
                Assert.StartsWith("+OK", await raw.ReadStatusAsync());
                Assert.Equal(RetrWire(raws[n - 1]), await raw.ReadMultiLineAsync());
            }
            lock (reader.Reads)
            {
                Assert.All(numbers, n => Assert.Single(reader.Reads, r => r.Blob == entries[n - 1].BlobName));
                Assert.DoesNotContain(reader.Reads, r => new[] { 1, 3, 5, 7, 9, 11 }.Any(i => r.Blob == entries[i].BlobName));
            }
        }
        finally
        {
            first.TrySetResult();
            third.TrySetResult();
        }
    }

    /// <summary>A message with a body of random bytes, base64 in 76-character lines (nothing compresses or repeats).</summary>
    private static byte[] LargeMail(string subject, int randomBytes, int seed)
    {
        var data = new byte[randomBytes];
        new Random(seed).NextBytes(data);
        var body = Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks);
        return System.Text.Encoding.ASCII.GetBytes(
            $"From: Sender <sender@example.org>\r\nTo: alice@example.com\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@example.org>\r\n" +
            "MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n");
    }

    [Fact]
    public async Task A_large_message_is_fetched_in_parallel_ranges_proven_and_served_byte_exact()
    {
        // 1: a blob of its own, 12 MiB; 2: 9 MiB inside a pack, between two small members; 3: like 1, damaged in storage.
        var own = LargeMail("own blob", 9_000_000, 1);
        await _spool.PutAsync("alice", own);
        var packed = new List<byte[]> { TestMail.Create("before", bodyBytes: 3_000), LargeMail("packed", 6_800_000, 2), TestMail.Create("after", bodyBytes: 3_000) };
        var ingested = packed.Select(r => IngestedMessage.FromBytes(r, "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow)).ToList();
        var slots = await _spool.Runtime.Spool.WritePackAsync("alice", ingested.Zip(packed, (m, r) => (m, (Stream)new MemoryStream(r))).ToList(), CancellationToken.None);
        await _spool.Runtime.Spool.CommitAsync("alice", ingested.Select((m, i) => m with { Pack = slots[i] }).ToList(), CancellationToken.None);
        var damaged = LargeMail("damaged", 9_000_000, 3);
        var stored = await _spool.PutAsync("alice", damaged);
        // Other bytes in the middle of one range, same length: only the proof of the whole can tell.
        await SpoilBlobAsync(stored, b => { b[7_000_000] ^= 0x20; return b; });

        var reader = new CountingReader(_spool.Runtime.SpoolReader);
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, CacheBytes = 128L << 20, Prefetch = false, ReadAheadMessages = 0 }, reader);
        var port = await ServeAsync(edge);
        var entries = (await edge.Mirror.SnapshotForLoginAsync("alice", CancellationToken.None)).ToList();
        using (var client = await ConnectAsync(port, "alice"))
        {
            Assert.Equal(5, client.Count);
            Assert.Equal(own, await RetrieveRawAsync(client, 0));
            Assert.Equal(packed[1], await RetrieveRawAsync(client, 2));
            var error = await Assert.ThrowsAsync<Pop3CommandException>(() => RetrieveRawAsync(client, 4));
            Assert.Contains("SYS/TEMP", error.StatusText + " " + error.Message, StringComparison.Ordinal);
            Assert.Equal(packed[0], await RetrieveRawAsync(client, 1)); // the session goes on
            await client.DisconnectAsync(quit: true);
        }

        // Each large one was read as 2 MiB ranges of its blob (a packed one's from its offset), covering it once.
        List<(string Blob, long? Offset, long Length)> reads;
        lock (reader.Reads)
            reads = [.. reader.Reads];
        foreach (var entry in new[] { entries[0], entries[2] })
        {
            var ranges = reads.Where(r => r.Blob == entry.BlobName && r.Length <= RangedDownload.RangeBytes && r.Offset >= (entry.BlobOffset ?? 0)).OrderBy(r => r.Offset).ToList();
            Assert.Equal(RangedDownload.Plan(entry.RawLength).Select(p => ((entry.BlobOffset ?? 0) + p.Offset, p.Length)), ranges.Select(r => (r.Offset!.Value, r.Length)));
        }
        var cache = edge.Mirror.Cache!;
        Assert.True(cache.Contains(entries[0]) && cache.Contains(entries[2]));
        Assert.False(cache.Contains(entries[4]));
        Assert.Equal(own, await File.ReadAllBytesAsync(CacheFileOf(entries[0])));
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.Combine(_state, "cache", "tmp")), f => !f.EndsWith(".json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Read_ahead_reads_neighbours_in_a_pack_with_one_request_each_proven()
    {
        // One pack of 12 small messages; the 7th is damaged in storage.
        var packed = Enumerable.Range(0, 12).Select(i => TestMail.Create($"packed {i}", bodyBytes: 1_000 + (i * 500))).ToList();
        var ingested = packed.Select(r => IngestedMessage.FromBytes(r, "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow)).ToList();
        var slots = await _spool.Runtime.Spool.WritePackAsync("alice", ingested.Zip(packed, (m, r) => (m, (Stream)new MemoryStream(r))).ToList(), CancellationToken.None);
        await _spool.Runtime.Spool.CommitAsync("alice", ingested.Select((m, i) => m with { Pack = slots[i] }).ToList(), CancellationToken.None);
        var stored = await _spool.ListAsync("alice");
        await SpoilBlobAsync(stored[6], b => { b[(int)stored[6].Pack!.Offset + 100] ^= 0x20; return b; });

        var reader = new CountingReader(_spool.Runtime.SpoolReader);
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, CacheBytes = 64L << 20, Prefetch = false, ReadAheadMessages = 8 }, reader);
        edge.Start();
        var port = await ServeAsync(edge);
        await using var raw = await RawPop3Client.LogInAsync(port, "alice", "secret");
        var cache = edge.Mirror.Cache!;

        Assert.Equal(RetrWire(packed[0]), await raw.MultiLineAsync("RETR 1"));
        // Messages 2-9 in one range request; the damaged one is refused, its neighbours proven and kept.
        await WaitForAsync(() => cache.Count == 8, "the read-ahead of messages 2-9");
        int Reads()
        {
            lock (reader.Reads)
                return reader.Reads.Count;
        }
        Assert.Equal(2, Reads());
        for (var i = 1; i < 12; i++)
        {
            if (i == 6)
                Assert.StartsWith("-ERR [SYS/TEMP]", await raw.CommandAsync("RETR 7"));
            else
                Assert.Equal(RetrWire(packed[i]), await raw.MultiLineAsync($"RETR {i + 1}"));
        }
        // 1 (RETR 1), 1 (2-9), 1 (the damaged one asked for again by RETR 7), 1 (10-12 once RETR 5 left less than half the window).
        Assert.Equal(4, Reads());
        lock (reader.Reads)
            Assert.Contains(reader.Reads, r => r.Offset == stored[1].Pack!.Offset && r.Length == stored[8].Pack!.Offset + stored[8].RawLength - stored[1].Pack!.Offset);
    }
}
