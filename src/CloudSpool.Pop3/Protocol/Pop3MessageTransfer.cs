using System.Buffers;

namespace CloudSpool.Pop3.Protocol;

/// <summary>What sending a message came to.</summary>
internal enum Pop3TransferStatus
{
    /// <summary>The +OK line, the message and the terminating line were written and flushed.</summary>
    Sent,

    /// <summary>
    /// The message could not be opened or its first chunk not read: nothing was written, the caller answers -ERR
    /// and the session goes on.
    /// </summary>
    Unavailable,
}

/// <summary>The outcome of <see cref="Pop3MessageTransfer.SendAsync"/>.</summary>
internal readonly record struct Pop3TransferResult(Pop3TransferStatus Status, long MessageOctets, Exception? Error);

/// <summary>
/// The stored message failed after part of the response was sent. The reply cannot be finished honestly (a
/// terminating line would make a truncated message look complete), so the connection must be closed.
/// </summary>
internal sealed class Pop3TransferAbortedException(string message, Exception inner) : IOException(message, inner);

/// <summary>Streams a stored message as a RETR or TOP response: memory is one chunk whatever the size of the message.</summary>
internal static class Pop3MessageTransfer
{
    // Input is encoded in slices so one output span stays small whatever the chunk size.
    private const int SliceSize = 16 * 1024;

    /// <summary>
    /// Opens the message, reads its first chunk, and only then writes <paramref name="okLine"/> and the data. The
    /// stream is read with the connection's idle timeout, so a storage read that hangs fails like one that throws.
    /// </summary>
    /// <exception cref="Pop3TransferAbortedException">The stored message failed after the response had begun.</exception>
    public static async ValueTask<Pop3TransferResult> SendAsync(
        Pop3Connection connection,
        Func<CancellationToken, ValueTask<Stream>> open,
        string okLine,
        Pop3DataEncoder encoder,
        int chunkSize,
        CancellationToken cancellationToken)
    {
        var chunk = ArrayPool<byte>.Shared.Rent(chunkSize);
        using var timer = new StoreTimer(connection.IdleTimeout, cancellationToken);
        Stream? source = null;
        try
        {
            int read;
            try
            {
                source = await timer.RunAsync(static (open, token) => open(token), open).ConfigureAwait(false);
                read = await ReadAsync(source, chunk, chunkSize, timer).ConfigureAwait(false);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                return new Pop3TransferResult(Pop3TransferStatus.Unavailable, 0, ex);
            }

            connection.WriteLine(okLine);
            var output = connection.Output;
            while (read > 0)
            {
                for (var offset = 0; offset < read && !encoder.IsComplete;)
                {
                    var slice = chunk.AsSpan(offset, Math.Min(SliceSize, read - offset));
                    var span = output.GetSpan(Pop3DataEncoder.MaxEncodedSize(slice.Length));
                    var written = encoder.Encode(slice, span, out var consumed);
                    output.Advance(written);
                    offset += consumed;
                }
                // A chunk that came back short was the end of the message: the final flush below sends it with the
                // terminating line, and no further read is needed.
                if (encoder.IsComplete || read < chunkSize)
                    break;
                await connection.FlushAsync(cancellationToken).ConfigureAwait(false);
                try
                {
                    read = await ReadAsync(source, chunk, chunkSize, timer).ConfigureAwait(false);
                }
                catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new Pop3TransferAbortedException("the stored message failed while it was being sent", ex);
                }
            }
            var end = output.GetSpan(Pop3DataEncoder.FinishSize);
            output.Advance(encoder.Finish(end));
            await connection.FlushAsync(cancellationToken).ConfigureAwait(false);
            return new Pop3TransferResult(Pop3TransferStatus.Sent, encoder.MessageOctets, null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
            if (source is not null)
                await source.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async ValueTask<int> ReadAsync(Stream source, byte[] chunk, int chunkSize, StoreTimer timer)
    {
        // Fill the chunk (a stream may return little at a time) so the client gets large writes.
        var total = 0;
        while (total < chunkSize)
        {
            var n = await timer.RunAsync(
                static (read, token) => read.Source.ReadAsync(read.Chunk.AsMemory(read.Total, read.Size - read.Total), token),
                (Source: source, Chunk: chunk, Total: total, Size: chunkSize)).ConfigureAwait(false);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    /// <summary>
    /// Bounds each call to the store (the open, every read) by <c>timeout</c>, so a store that hangs fails like one
    /// that throws. One timer serves the whole transfer: armed for each call and stopped after it, never while the
    /// transfer waits on the client, whose own waits the connection bounds.
    /// </summary>
    private sealed class StoreTimer(TimeSpan timeout, CancellationToken cancellationToken) : IDisposable
    {
        private CancellationTokenSource _limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        public async ValueTask<T> RunAsync<TState, T>(Func<TState, CancellationToken, ValueTask<T>> call, TState state)
        {
            if (_limit.IsCancellationRequested)
            {
                cancellationToken.ThrowIfCancellationRequested();
                // It went off just as the previous call ended: a new one for this call.
                _limit.Dispose();
                _limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            }
            _limit.CancelAfter(timeout);
            try
            {
                return await call(state, _limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException("the stored message did not answer within " + timeout);
            }
            finally
            {
                _limit.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }

        public void Dispose() => _limit.Dispose();
    }
}
