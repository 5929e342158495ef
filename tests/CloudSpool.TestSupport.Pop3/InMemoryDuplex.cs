using System.IO.Pipelines;

namespace CloudSpool.TestSupport.Pop3;

/// <summary>A connected pair of in-memory streams (two pipes), standing in for a socket in transcript tests.</summary>
public static class InMemoryDuplex
{
    public static (Stream Server, Stream Client) CreatePair()
    {
        var toServer = new Pipe();
        var toClient = new Pipe();
        return (new DuplexStream(toServer.Reader.AsStream(), toClient.Writer.AsStream()),
                new DuplexStream(toClient.Reader.AsStream(), toServer.Writer.AsStream()));
    }

    /// <summary>
    /// One end made of two streams: reads from <paramref name="input"/>, writes to <paramref name="output"/>. For a peer
    /// that must close its sending side and still read the rest of the reply (a half-close).
    /// </summary>
    public static Stream Join(Stream input, Stream output) => new DuplexStream(input, output);

    private sealed class DuplexStream(Stream input, Stream output) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            input.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            input.ReadAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            output.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            output.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Flush() => output.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => output.FlushAsync(cancellationToken);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                // Completing the output pipe is the "connection closed" the other side reads as end of stream.
                output.Dispose();
                input.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
