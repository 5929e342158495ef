namespace CloudSpool.Core.Ingest;

/// <summary>
/// A temporary file that receives a message's bytes as they arrive from upstream, metering them on
/// the way (hashes, RFC 1939 size), so that a 50 MB message never has to sit whole in memory.
/// The file is deleted when disposed.
/// </summary>
public sealed class IngestFile : Stream
{
    private readonly FileStream _file;
    private readonly IngestMeter _meter = new();
    private IngestFigures? _figures;

    private IngestFile(FileStream file) => _file = file;

    /// <summary>Creates an empty file in <paramref name="directory"/> (created if missing).</summary>
    public static IngestFile Create(string directory)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"ingest-{Guid.NewGuid():N}.eml");
        var fileOptions = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            Options = FileOptions.DeleteOnClose | FileOptions.Asynchronous,
            BufferSize = 81920,
        };
        if (!OperatingSystem.IsWindows())
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // mail is private
        return new IngestFile(new FileStream(path, fileOptions));
    }

    /// <summary>Figures of everything written; available after <see cref="Seal"/>.</summary>
    public IngestFigures Figures => _figures ?? throw new InvalidOperationException("the ingest file is not sealed yet");

    /// <summary>Stops writing, completes the figures and returns a read view positioned at 0.</summary>
    public Stream Seal()
    {
        _figures ??= _meter.Complete();
        _file.Flush();
        _file.Position = 0;
        return _file;
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => _figures is null;
    public override long Length => _file.Length;
    public override long Position { get => _file.Position; set => throw new NotSupportedException(); }
    public override void Flush() => _file.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _file.FlushAsync(cancellationToken);
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureWritable();
        _meter.Append(buffer);
        _file.Write(buffer);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        _meter.Append(buffer.Span);
        return _file.WriteAsync(buffer, cancellationToken);
    }

    private void EnsureWritable()
    {
        if (_figures is not null)
            throw new InvalidOperationException("the ingest file is sealed");
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
            _meter.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await _file.DisposeAsync().ConfigureAwait(false);
        _meter.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
