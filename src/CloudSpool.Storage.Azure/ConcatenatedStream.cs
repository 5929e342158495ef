namespace CloudSpool.Storage.Azure;

/// <summary>
/// Several seekable streams read one after the other as one seekable, read-only stream (the body of a pack upload;
/// seekable so the storage client can rewind it to retry). The parts are not disposed with it.
/// </summary>
internal sealed class ConcatenatedStream : Stream
{
    private readonly IReadOnlyList<Stream> _parts;
    private readonly long[] _starts;
    private long _position;

    public ConcatenatedStream(IReadOnlyList<Stream> parts)
    {
        _parts = parts;
        _starts = new long[parts.Count + 1];
        for (var i = 0; i < parts.Count; i++)
        {
            if (!parts[i].CanSeek || !parts[i].CanRead)
                throw new ArgumentException($"part {i} is not a readable, seekable stream", nameof(parts));
            _starts[i + 1] = _starts[i] + parts[i].Length;
        }
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => _starts[^1];

    public override long Position
    {
        get => _position;
        set => _position = value is >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value));
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (!Locate(out var part, out var within) || buffer.IsEmpty)
            return 0;
        var stream = _parts[part];
        stream.Position = within;
        var read = stream.Read(buffer[..(int)Math.Min(buffer.Length, _starts[part + 1] - _position)]);
        _position += read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Locate(out var part, out var within) || buffer.IsEmpty)
            return 0;
        var stream = _parts[part];
        stream.Position = within;
        var read = await stream.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _starts[part + 1] - _position)], cancellationToken).ConfigureAwait(false);
        _position += read;
        return read;
    }

    /// <summary>The part holding the current position (skipping empty parts) and the offset in it; false at the end.</summary>
    private bool Locate(out int part, out long within)
    {
        part = 0;
        within = 0;
        if (_position >= Length)
            return false;
        var index = Array.BinarySearch(_starts, _position);
        // An exact hit is the start of that part (or of the first non-empty part after it); otherwise the part before.
        part = index >= 0 ? index : ~index - 1;
        while (_starts[part + 1] <= _position)
            part++;
        within = _position - _starts[part];
        return true;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        Position = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => Length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        return _position;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
