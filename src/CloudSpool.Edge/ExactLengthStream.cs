namespace CloudSpool.Edge;

/// <summary>
/// Reads exactly <c>length</c> bytes of a proven file: it ends there even if the file has grown since, and throws when
/// the file ends sooner (it was truncated after its proof), so a short copy is never taken for the whole message. The
/// POP3 server answers a throw before its first chunk with -ERR and ends the session without the terminating line
/// after it.
/// </summary>
/// <remarks>
/// Reads are synchronous even when asked for asynchronously: on Linux a file's ReadAsync only hands the same read to
/// the thread pool, and a read of a cached file is a page-cache copy, cheaper than that hand-over.
/// </remarks>
internal sealed class ExactLengthStream(FileStream inner, long length) : Stream
{
    private long _left = length;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) =>
        _left == 0 || buffer.IsEmpty ? 0 : Counted(inner.Read(buffer[..Limit(buffer.Length)]));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
            return ValueTask.FromCanceled<int>(cancellationToken);
        try
        {
            return ValueTask.FromResult(Read(buffer.Span));
        }
        catch (Exception ex)
        {
            return ValueTask.FromException<int>(ex);
        }
    }

    private int Limit(int wanted) => (int)Math.Min(wanted, _left);

    private int Counted(int read)
    {
        if (read == 0)
            throw new EndOfStreamException($"the copy of the message ended {_left} bytes short; it changed after it was proven");
        _left -= read;
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            inner.Dispose();
        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync() => inner.DisposeAsync();
}
