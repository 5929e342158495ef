using System.Buffers;
using System.Security.Cryptography;
using CloudSpool.Core.Security;
using CloudSpool.Core.Spool;
using Microsoft.Win32.SafeHandles;

namespace CloudSpool.Edge;

/// <summary>
/// Copies of stored messages that are proven before a byte of them is served: fetched from storage into a local file
/// (a large message in parallel ranges) while the length and SHA-256 recorded at ingest are checked, and read back
/// the same way. The cache fills its files with it; a message too large to cache is staged in a temporary file.
/// </summary>
internal static class ProvenCopy
{
    /// <summary>
    /// Opens a message not kept in a cache: fetched into a private file in <paramref name="directory"/> and proven
    /// first, so not a byte goes out before the whole is known to be right. The name is removed at once; the open
    /// handle keeps the bytes until the transfer ends.
    /// </summary>
    internal static async Task<Stream> OpenStagedAsync(ISpoolReader spool, SpoolIndexEntry entry, string directory, CancellationToken cancellationToken)
    {
        var path = Path.Combine(PrivateFiles.EnsureDirectory(directory), Guid.NewGuid().ToString("N"));
        await DownloadAsync(spool, entry, path, cancellationToken).ConfigureAwait(false);
        try
        {
            return new ExactLengthStream(OpenRead(path), entry.RawLength);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// Reads the span of neighbouring pack members (<see cref="PackRuns"/>) with one range request and splits it into
    /// one new file per member in <paramref name="directory"/>, each proven on its own: <paramref name="kept"/> gets a
    /// proven member's index, file and identity (and owns the file from then on), <paramref name="refused"/> a member
    /// whose bytes do not match what ingest recorded. Throws when the read fails; the members not handed on yet were
    /// not read.
    /// </summary>
    internal static async Task ReadRunAsync(ISpoolReader spool, IReadOnlyList<SpoolIndexEntry> members, string directory,
        Action<int, string, FileIdentity> kept, Action<int, string> refused, CancellationToken cancellationToken)
    {
        var start = members[0].BlobOffset!.Value;
        var end = PackRuns.End(members[^1]);
        await using var source = await spool.OpenContentAsync(members[0].BlobName, start, end - start, cancellationToken).ConfigureAwait(false);
        var at = start;
        for (var index = 0; index < members.Count; index++)
        {
            var entry = members[index];
            await SkipAsync(source, entry.BlobOffset!.Value - at, cancellationToken).ConfigureAwait(false);
            at = PackRuns.End(entry);
            var temp = Path.Combine(directory, Guid.NewGuid().ToString("N"));
            try
            {
                FileIdentity identity;
                string? mismatch;
                await using (var target = new FileStream(temp, PrivateFiles.NewFileOptions(FileAccess.Write, bufferSize: 0)))
                {
                    mismatch = await CheckAsync(source, target, entry, cancellationToken, limit: entry.RawLength).ConfigureAwait(false);
                    identity = FileIdentity.Of(target.SafeFileHandle);
                }
                if (mismatch is not null)
                {
                    // Its bytes were read whole (or the stream ended): the next member starts where it should.
                    File.Delete(temp);
                    refused(index, $"the stored bytes of message {entry.MessageKey} do not match what ingest recorded ({mismatch})");
                    continue;
                }
                kept(index, temp, identity);
            }
            catch
            {
                File.Delete(temp);
                throw;
            }
        }
    }

    /// <summary>Reads and drops <paramref name="count"/> bytes (the gap between two members of a run).</summary>
    private static async Task SkipAsync(Stream source, long count, CancellationToken cancellationToken)
    {
        if (count <= 0)
            return;
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (count > 0)
            {
                var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    throw new EndOfStreamException("storage ended a pack range early");
                count -= read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // FileShare.Delete: eviction may remove the name while a session still reads the file. No FileStream buffer (the
    // POP3 transfer reads whole 64 KiB chunks) and no Asynchronous flag (on Linux that only hands each read to the
    // thread pool; a read of a cached file is a page-cache copy).
    internal static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0, FileOptions.SequentialScan);

    /// <summary>
    /// Fetches a message's stored bytes into a new file (a large one in parallel ranges: <see cref="RangedDownload"/>) and
    /// proves them (length and SHA-256 as ingest recorded). Throws, the file removed, when storage cannot deliver those
    /// bytes. Nothing is written through to disk: a copy is trusted by this process only as it proved it, and what an
    /// earlier process left is proven again at its first use, so a sync per fill would buy nothing and cost a disk
    /// flush per miss.
    /// </summary>
    internal static async Task<FileIdentity> DownloadAsync(ISpoolReader spool, SpoolIndexEntry entry, string path, CancellationToken cancellationToken)
    {
        try
        {
            await using var target = new FileStream(path, PrivateFiles.NewFileOptions(FileAccess.ReadWrite, bufferSize: 0));
            string? mismatch;
            if (RangedDownload.Applies(entry))
            {
                // Ranges arrive out of order: the file is filled at their offsets, then read back whole for the proof,
                // so what is proven is what the file holds.
                target.SetLength(entry.RawLength);
                await RangedDownload.FillAsync(spool, entry, target.SafeFileHandle, cancellationToken).ConfigureAwait(false);
                mismatch = await CheckAsync(target, null, entry, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await using var source = await spool.OpenContentAsync(entry, cancellationToken).ConfigureAwait(false);
                mismatch = await CheckAsync(source, target, entry, cancellationToken).ConfigureAwait(false);
            }
            if (mismatch is not null)
                throw new InvalidDataException($"the stored bytes of message {entry.MessageKey} do not match what ingest recorded ({mismatch})");
            return FileIdentity.Of(target.SafeFileHandle);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>
    /// Reads <paramref name="source"/> to its end or <paramref name="limit"/> bytes (copied to <paramref name="target"/> when given) and compares it with
    /// what ingest recorded: null when length and SHA-256 match, else what was found.
    /// </summary>
    /// <remarks>
    /// Files are read and written synchronously: on Linux a file's ReadAsync and WriteAsync only hand the same call to
    /// the thread pool, and what they do here is a page-cache copy, cheaper than that hand-over. Storage's stream is
    /// read asynchronously.
    /// </remarks>
    internal static async Task<string?> CheckAsync(Stream source, FileStream? target, SpoolIndexEntry entry, CancellationToken cancellationToken, long limit = long.MaxValue)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long length = 0;
            int read;
            while (length < limit && (read = await ReadAsync(source, buffer.AsMemory(0, (int)Math.Min(64 * 1024, limit - length)), cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                target?.Write(buffer, 0, read);
                length += read;
            }
            var sha = Sha256Digest.FromBytes(hash.GetHashAndReset());
            return length == entry.RawLength && entry.HasDigest && sha == entry.Digest
                ? null
                : $"{length} bytes, SHA-256 {sha}; expected {entry.RawLength} bytes, {entry.Sha256}";
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static ValueTask<int> ReadAsync(Stream source, Memory<byte> buffer, CancellationToken cancellationToken) =>
        source is FileStream file ? ValueTask.FromResult(file.Read(buffer.Span)) : source.ReadAsync(buffer, cancellationToken);
}

/// <summary>What a proven file looked like: an open that finds another length or write time proves it again.</summary>
internal readonly record struct FileIdentity(long Length, DateTime LastWriteUtc)
{
    public static FileIdentity Of(SafeFileHandle file) => new(RandomAccess.GetLength(file), File.GetLastWriteTimeUtc(file));
}
