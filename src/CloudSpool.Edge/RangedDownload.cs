using System.Buffers;
using CloudSpool.Core.Spool;
using Microsoft.Win32.SafeHandles;

namespace CloudSpool.Edge;

/// <summary>
/// Fetches a large message from storage as several ranges in parallel, each written at its offset into the file being
/// proven, so a miss on a large message goes at the storage's speed rather than one stream's, and the edge's memory does
/// not grow with the message (one 64 KiB buffer per range in flight).
/// </summary>
/// <remarks>
/// The file is only filled here; the caller proves it (length and SHA-256 read back from the file) before anything is
/// served. A range that fails or ends short fails the whole fetch.
/// </remarks>
internal static class RangedDownload
{
    /// <summary>Messages larger than this are fetched in ranges; smaller ones in one request.</summary>
    public const long Threshold = 4L << 20;

    /// <summary>The size of one range (the last one takes the rest).</summary>
    public const long RangeBytes = 2L << 20;

    /// <summary>Ranges of one message in flight at once.</summary>
    public const int PerMessage = 4;

    /// <summary>Ranges in flight at once in this process, for all messages together.</summary>
    public const int InFlight = 8;

    private static readonly SemaphoreSlim Slots = new(InFlight, InFlight);

    /// <summary>
    /// How a message of <paramref name="length"/> bytes is read: one range for the whole when it is at most
    /// <paramref name="threshold"/>, else ranges of <paramref name="rangeBytes"/> (offsets within the message).
    /// </summary>
    public static IReadOnlyList<(long Offset, long Length)> Plan(long length, long threshold = Threshold, long rangeBytes = RangeBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rangeBytes);
        if (length <= threshold)
            return [(0, length)];
        var ranges = new List<(long, long)>((int)((length + rangeBytes - 1) / rangeBytes));
        for (long offset = 0; offset < length; offset += rangeBytes)
            ranges.Add((offset, Math.Min(rangeBytes, length - offset)));
        return ranges;
    }

    /// <summary>Whether a message is fetched in ranges.</summary>
    public static bool Applies(SpoolIndexEntry entry) => entry.RawLength > Threshold;

    /// <summary>
    /// Writes the message's stored bytes into <paramref name="file"/> (already sized to the message), range by range, at
    /// most <see cref="PerMessage"/> at once. Throws when a range cannot be read whole.
    /// </summary>
    public static async Task FillAsync(ISpoolReader spool, SpoolIndexEntry entry, SafeFileHandle file, CancellationToken cancellationToken)
    {
        var start = entry.BlobOffset ?? 0;
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = PerMessage, CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Plan(entry.RawLength), parallel, async (range, ct) =>
        {
            await Slots.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await using var source = await spool.OpenContentAsync(entry.BlobName, start + range.Offset, range.Length, ct).ConfigureAwait(false);
                await CopyRangeAsync(source, file, range.Offset, range.Length, entry.MessageKey, ct).ConfigureAwait(false);
            }
            finally
            {
                Slots.Release();
            }
        }).ConfigureAwait(false);
    }

    private static async Task CopyRangeAsync(Stream source, SafeFileHandle file, long offset, long length, string messageKey, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            long done = 0;
            while (done < length)
            {
                var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(64 * 1024, length - done)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                    throw new InvalidDataException($"storage ended the range {offset}+{length} of message {messageKey} after {done} bytes");
                RandomAccess.Write(file, buffer.AsSpan(0, read), offset + done); // a page-cache copy: see ProvenCopy.CheckAsync
                done += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
