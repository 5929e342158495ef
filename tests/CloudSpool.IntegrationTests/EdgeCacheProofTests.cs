using CloudSpool.Core.Spool;
using CloudSpool.Edge;
using CloudSpool.IntegrationTests.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// Issue 16: the edge proves a copy before it serves it. Cache files damaged while the edge was stopped or while it
/// runs: every RETR and TOP gives the exact bytes, and a copy that fails once bytes are on the wire
/// ends the session without the terminating line.
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
}
