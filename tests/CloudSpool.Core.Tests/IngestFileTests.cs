using System.Security.Cryptography;
using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Tests;

/// <summary>The ingest buffer: small messages in memory, larger ones moved to a file, the same bytes and figures either way.</summary>
public sealed class IngestFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cloudspool-ingest-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static byte[] Bytes(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream, int piece)
    {
        using var copy = new MemoryStream();
        var buffer = new byte[piece];
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
            copy.Write(buffer, 0, read);
        return copy.ToArray();
    }

    [Theory]
    [InlineData(0, 1000, false)]
    [InlineData(1, 1000, false)]
    [InlineData(65536, 200_000, false)]
    [InlineData(65537, 200_000, false)]
    [InlineData(200_000, 200_000, false)]
    [InlineData(200_001, 200_000, true)]
    [InlineData(500_000, 200_000, true)]
    [InlineData(10, 0, true)]
    [InlineData(0, 0, true)]
    // Around the edges of the growing chunks (4, 8, 16, 32 KiB, then 64 KiB each), and a move to a file past them.
    [InlineData(4095, 200_000, false)]
    [InlineData(4096, 200_000, false)]
    [InlineData(4097, 200_000, false)]
    [InlineData(12_288, 200_000, false)]
    [InlineData(61_439, 200_000, false)]
    [InlineData(61_440, 200_000, false)]
    [InlineData(61_441, 200_000, false)]
    [InlineData(126_976, 200_000, false)]
    [InlineData(126_977, 126_976, true)]
    public async Task Keeps_small_messages_in_memory_moves_larger_ones_to_a_file_and_reads_back_the_same_bytes(int length, long limit, bool inFile)
    {
        var bytes = Bytes(length);
        await using var file = IngestFile.Create(_directory, limit);
        // Written in pieces of awkward sizes, as they come off the wire.
        for (var at = 0; at < bytes.Length;)
        {
            var piece = Math.Min(bytes.Length - at, 1 + (at % 9973));
            if (at % 2 == 0)
                await file.WriteAsync(bytes.AsMemory(at, piece));
            else
                file.Write(bytes, at, piece);
            at += piece;
        }
        var content = file.Seal();

        Assert.Equal(inFile, file.InFile);
        Assert.Equal(inFile ? 1 : 0, Directory.GetFiles(_directory).Length);
        Assert.Equal(length, content.Length);
        Assert.Equal(bytes, await ReadAllAsync(content, 4096));
        // Read again from the start, and from the middle (a retried upload, a pack's member read after the summary).
        content.Position = 0;
        Assert.Equal(bytes, await ReadAllAsync(content, 70_000));
        content.Position = length / 2;
        Assert.Equal(bytes[(length / 2)..], await ReadAllAsync(content, 333));
        Assert.Equal((long)length, file.Figures.RawLength);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), file.Figures.Sha256);

        await file.DisposeAsync();
        Assert.Empty(Directory.GetFiles(_directory));
    }

    [Fact]
    public async Task Reads_from_any_position_around_the_chunk_edges()
    {
        var bytes = Bytes(300_000);
        await using var file = IngestFile.Create(_directory, 1L << 20);
        file.Write(bytes);
        var content = file.Seal();
        Assert.False(file.InFile);
        long[] edges = [4096, 12_288, 28_672, 61_440, 126_976, 192_512, 258_048];
        foreach (var position in edges.SelectMany(e => new[] { e - 1, e, e + 1 }).Prepend(0).Append(bytes.Length - 1))
        {
            content.Position = position;
            Assert.Equal(bytes[(int)position..], await ReadAllAsync(content, 5000));
        }
    }

    [Fact]
    public void A_sealed_buffer_takes_no_more_bytes()
    {
        using var file = IngestFile.Create(_directory, 100);
        file.Write([1, 2, 3]);
        file.Seal();
        Assert.Throws<InvalidOperationException>(() => file.Write([4]));
    }

    /// <summary>
    /// Issue 19, item 8: mail spilled to disk lies in a per-user directory of this user only (0700) in 0600 files, and a
    /// staging directory someone else prepared (another user's) is refused, not written into.
    /// </summary>
    [Fact]
    public void Spilled_mail_is_private_and_another_users_staging_directory_is_refused()
    {
        Assert.Equal(Path.Combine(Path.GetTempPath(), "cloudspool-" + Security.Posix.EffectiveUserId), new CloudSpool.Core.Pull.PullEngineOptions().TempDirectory);
        var staging = Path.Combine(_directory, "staging");
        using (var ingest = IngestFile.Create(staging))
        {
            ingest.Write("Subject: hi\r\n\r\nbody\r\n"u8);
            using var sealedView = ingest.Seal();
            Assert.Equal((UnixFileMode)0x1C0, File.GetUnixFileMode(staging)); // 0700
            Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(Assert.Single(Directory.GetFiles(staging)))); // 0600
        }

        if (!Security.Posix.IsRoot)
            return;
        var planted = Path.Combine(_directory, "planted");
        Directory.CreateDirectory(planted);
        File.SetUnixFileMode(planted, (UnixFileMode)0x1FF); // 0777, as someone preparing it for us would leave it
        Security.Posix.Chown(planted, Security.Posix.OtherUser);
        using var refused = IngestFile.Create(planted);
        Assert.Throws<UnauthorizedAccessException>(() => refused.Write("Subject: hi\r\n\r\n"u8));
        Assert.Empty(Directory.GetFiles(planted));
    }
}
