using CloudSpool.Core.Ingest;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Several seekable streams read one after the other as one seekable, read-only stream (the body of a pack upload;
/// seekable so the storage client can rewind it to retry). The parts are not disposed with it.
/// </summary>
internal sealed class ConcatenatedStream : ReadOnlySeekableStream
{
    private readonly IReadOnlyList<Stream> _parts;
    private readonly long[] _starts;

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

    public override long Length => _starts[^1];

    public override int Read(Span<byte> buffer)
    {
        if (!Locate(out var part, out var within) || buffer.IsEmpty)
            return 0;
        var stream = _parts[part];
        stream.Position = within;
        var read = stream.Read(buffer[..(int)Math.Min(buffer.Length, _starts[part + 1] - Position)]);
        Position += read;
        return read;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!Locate(out var part, out var within) || buffer.IsEmpty)
            return 0;
        var stream = _parts[part];
        stream.Position = within;
        var read = await stream.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _starts[part + 1] - Position)], cancellationToken).ConfigureAwait(false);
        Position += read;
        return read;
    }

    /// <summary>The part holding the current position (skipping empty parts) and the offset in it; false at the end.</summary>
    private bool Locate(out int part, out long within)
    {
        part = 0;
        within = 0;
        if (Position >= Length)
            return false;
        var index = Array.BinarySearch(_starts, Position);
        // An exact hit is the start of that part (or of the first non-empty part after it); otherwise the part before.
        part = index >= 0 ? index : ~index - 1;
        while (_starts[part + 1] <= Position)
            part++;
        within = Position - _starts[part];
        return true;
    }
}
