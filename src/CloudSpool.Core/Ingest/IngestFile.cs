using System.Buffers;
using CloudSpool.Core.Security;

namespace CloudSpool.Core.Ingest;

/// <summary>
/// Receives a message's bytes as they arrive from upstream, metering them on the way (hashes, RFC 1939 size). Up to a
/// limit they are kept in memory (chunks from a pool: no file to create, write, read back and delete for each message);
/// past it everything moves to a temporary file, so a 50 MB message never sits whole in memory. The file is deleted and
/// the chunks go back to the pool when this is disposed.
/// </summary>
/// <remarks>
/// The chunks grow: 4, 8, 16 and 32 KiB, then 64 KiB each. A typical mail of a few KiB takes one small chunk, not a
/// large one mostly empty, and a large message still has few chunks.
/// </remarks>
public sealed class IngestFile : Stream
{
    private const int FirstChunkSize = 4 * 1024;
    private const int ChunkSize = 64 * 1024;
    private const int GrowingChunks = 4; // 4, 8, 16, 32 KiB
    private const long GrowingBytes = FirstChunkSize * ((1L << GrowingChunks) - 1); // 60 KiB

    /// <summary>
    /// Chunks kept for reuse between messages: of each size at most as many as were ever in use at once (the bytes waiting
    /// for their write are bounded by the pull), and never more than 1,024.
    /// </summary>
    private static readonly ArrayPool<byte> Chunks = ArrayPool<byte>.Create(ChunkSize, 1024);

    /// <summary>The chunk holding byte <paramref name="position"/>, where in it, and that chunk's size.</summary>
    private static (int Index, int Within, int Size) Locate(long position)
    {
        if (position >= GrowingBytes)
        {
            var past = position - GrowingBytes;
            return ((int)(GrowingChunks + past / ChunkSize), (int)(past % ChunkSize), ChunkSize);
        }
        var index = System.Numerics.BitOperations.Log2((ulong)(position / FirstChunkSize + 1));
        var start = FirstChunkSize * ((1L << index) - 1);
        return (index, (int)(position - start), FirstChunkSize << index);
    }

    private readonly string _directory;
    private readonly long _memoryLimit;
    private readonly IngestMeter _meter = new();
    private List<byte[]>? _chunks = [];
    private long _length;
    private FileStream? _file;
    private IngestFigures? _figures;
    private bool _disposed;

    private IngestFile(string directory, long memoryLimit)
    {
        _directory = directory;
        _memoryLimit = memoryLimit;
    }

    /// <summary>
    /// A new, empty ingest buffer: in memory up to <paramref name="memoryLimit"/> bytes, beyond that in a file in
    /// <paramref name="directory"/> (created if missing, 0700; one of another user is refused). A limit of 0 puts every message in a file.
    /// </summary>
    public static IngestFile Create(string directory, long memoryLimit = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(memoryLimit);
        return new IngestFile(directory, memoryLimit);
    }

    /// <summary>Whether the bytes are in a temporary file (the message outgrew the memory limit).</summary>
    public bool InFile => _file is not null;

    /// <summary>Figures of everything written; available after <see cref="Seal"/>.</summary>
    public IngestFigures Figures => _figures ?? throw new InvalidOperationException("the ingest file is not sealed yet");

    /// <summary>Stops writing, completes the figures and returns a seekable read view positioned at 0.</summary>
    public Stream Seal()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _figures ??= _meter.Complete();
        if (_file is null && _chunks is not null && _memoryLimit == 0)
            Spill(); // nothing in memory is allowed: even an empty message gets its file
        if (_file is not null)
        {
            _file.Flush();
            _file.Position = 0;
            return _file;
        }
        return new ChunkReader(_chunks!, _length);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => _figures is null && !_disposed;
    public override long Length => _length;
    public override long Position { get => _length; set => throw new NotSupportedException(); }

    public override void Flush() => _file?.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _file?.FlushAsync(cancellationToken) ?? Task.CompletedTask;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureWritable();
        _meter.Append(buffer);
        if (_file is null && _length + buffer.Length > _memoryLimit)
            Spill();
        if (_file is not null)
            _file.Write(buffer);
        else
            Keep(buffer);
        _length += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        _meter.Append(buffer.Span);
        if (_file is null && _length + buffer.Length > _memoryLimit)
            Spill();
        if (_file is not null)
        {
            _length += buffer.Length;
            return _file.WriteAsync(buffer, cancellationToken);
        }
        Keep(buffer.Span);
        _length += buffer.Length;
        return ValueTask.CompletedTask;
    }

    /// <summary>Copies bytes into the chunks (memory mode).</summary>
    private void Keep(ReadOnlySpan<byte> buffer)
    {
        var chunks = _chunks!;
        var length = _length;
        while (!buffer.IsEmpty)
        {
            var (index, within, size) = Locate(length);
            if (index == chunks.Count)
                chunks.Add(Chunks.Rent(size));
            var take = Math.Min(size - within, buffer.Length);
            buffer[..take].CopyTo(chunks[index].AsSpan(within));
            buffer = buffer[take..];
            length += take;
        }
    }

    /// <summary>Moves what is in memory to a new temporary file; later bytes go there too.</summary>
    private void Spill()
    {
        // A private directory (this user's, 0700) and a private file (0600, created new): mail is private.
        var path = Path.Combine(PrivateFiles.EnsureDirectory(_directory), $"ingest-{Guid.NewGuid():N}.eml");
        var fileOptions = PrivateFiles.NewFileOptions(FileAccess.ReadWrite, FileOptions.DeleteOnClose | FileOptions.Asynchronous, 81920);
        var file = new FileStream(path, fileOptions);
        var written = 0L;
        foreach (var chunk in _chunks!)
        {
            var (_, _, size) = Locate(written);
            var take = (int)Math.Min(size, _length - written);
            file.Write(chunk, 0, take);
            written += take;
        }
        ReturnChunks();
        _file = file;
    }

    private void ReturnChunks()
    {
        if (_chunks is null)
            return;
        foreach (var chunk in _chunks)
            Chunks.Return(chunk);
        _chunks = null;
    }

    private void EnsureWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_figures is not null)
            throw new InvalidOperationException("the ingest file is sealed");
    }

    /// <remarks>A read view handed out by <see cref="Seal"/> must not be used after this: its chunks are reused.</remarks>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _file?.Dispose();
            ReturnChunks();
            _meter.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            if (_file is not null)
                await _file.DisposeAsync().ConfigureAwait(false);
            ReturnChunks();
            _meter.Dispose();
        }
        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>A seekable, read-only view of bytes kept in chunks.</summary>
    private sealed class ChunkReader(List<byte[]> chunks, long length) : ReadOnlySeekableStream
    {
        public override long Length => length;

        public override int Read(Span<byte> buffer)
        {
            var total = 0;
            while (!buffer.IsEmpty && Position < length)
            {
                var position = Position;
                var (index, within, size) = Locate(position);
                var take = (int)Math.Min(Math.Min(size - within, buffer.Length), length - position);
                chunks[index].AsSpan(within, take).CopyTo(buffer);
                buffer = buffer[take..];
                Position = position + take;
                total += take;
            }
            return total;
        }
    }
}
