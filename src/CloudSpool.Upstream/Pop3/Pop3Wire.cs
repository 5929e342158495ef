using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;

namespace CloudSpool.Upstream.Pop3;

/// <summary>
/// The byte layer of a POP3 client connection: reads reply lines with a hard length cap, copies multi-line
/// data (RETR, TOP) straight through to a destination with the dot-stuffing undone (RFC 1939 section 3),
/// and writes command lines. It knows nothing of commands or state. Memory is one pooled buffer, whatever
/// the size of a message; every read and write on the underlying stream is bounded by an idle timeout.
/// </summary>
/// <remarks>
/// Failures: <see cref="TimeoutException"/> (the peer sent nothing for the timeout), <see cref="EndOfStreamException"/>
/// (the peer closed the connection), <see cref="UpstreamPop3ProtocolException"/> (an over-long line), any I/O exception of the
/// stream, and <see cref="Pop3DestinationException"/> when the destination of a multi-line reply fails. After any of them
/// the position in the byte stream is unknown: the connection is unusable.
/// </remarks>
internal sealed class Pop3Wire : IDisposable
{
    public const int DefaultBufferSize = 64 * 1024;

    /// <summary>
    /// Longest reply line accepted, without its line end. RFC 2449 section 4 limits responses to 512 octets; SASL
    /// challenges (RFC 5034 section 4) have no limit, but those of the mechanisms used here are far below this.
    /// </summary>
    public const int DefaultMaxLineLength = 16 * 1024;

    private static readonly Encoding CommandEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false);

    private readonly Stream _stream;
    private readonly TimeSpan _timeout;
    private readonly int _maxLineLength;
    private readonly ArrayBufferWriter<byte> _outgoing = new(256);
    private byte[] _buffer;
    private int _pos;
    private int _end;

    public Pop3Wire(Stream stream, TimeSpan timeout, int maxLineLength = DefaultMaxLineLength, int bufferSize = DefaultBufferSize)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineLength, 16);
        // A whole reply line (with CRLF) must fit in the buffer; multi-line data needs at least ".\r\n" of look-ahead.
        ArgumentOutOfRangeException.ThrowIfLessThan(bufferSize, maxLineLength + 2);
        _stream = stream;
        _timeout = timeout;
        _maxLineLength = maxLineLength;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
    }

    /// <summary>Bytes received and not yet consumed (e.g. replies to pipelined commands).</summary>
    public int BufferedCount => _end - _pos;

    /// <summary>Command bytes queued by <see cref="QueueLine"/> and not yet sent.</summary>
    public int PendingOutputCount => _outgoing.WrittenCount;

    /// <summary>Reads one reply line and returns it without its line end, each byte as one character (Latin-1: lossless).</summary>
    public async ValueTask<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            while (true)
            {
                var lf = _buffer.AsSpan(_pos, _end - _pos).IndexOf((byte)'\n');
                if (lf >= 0)
                {
                    var length = lf;
                    // RFC 1939 section 3: lines end in CRLF; a bare LF is tolerated, as MailKit does.
                    if (length > 0 && _buffer[_pos + length - 1] == (byte)'\r')
                        length--;
                    if (length > _maxLineLength)
                        throw LineTooLong();
                    var line = Encoding.Latin1.GetString(_buffer, _pos, length);
                    _pos += lf + 1;
                    return line;
                }
                if (_end - _pos > _maxLineLength + 1)
                    throw LineTooLong();
                await FillAsync(idle).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw IdleTimeout();
        }
    }

    /// <summary>
    /// Reads the lines of a multi-line reply as text (CAPA, LIST, UIDL), undoing the byte-stuffing; null at the
    /// terminating "." line (RFC 1939 section 3).
    /// </summary>
    public async ValueTask<string?> ReadMultilineLineAsync(CancellationToken cancellationToken)
    {
        var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
        if (line == ".")
            return null;
        return line.StartsWith('.') ? line[1..] : line;
    }

    /// <summary>
    /// Copies the data of a multi-line reply to <paramref name="destination"/>, up to and without the terminating
    /// ".CRLF", undoing the dot-stuffing (a line that starts with ".." loses its first dot, RFC 1939 section 3).
    /// Every other byte is written exactly as received: CRLF, bare CR or LF, 8-bit and NUL bytes. Lines of any length
    /// pass through in buffer-sized pieces. Returns the number of bytes written.
    /// </summary>
    /// <remarks>
    /// A line starts after any LF, and ".LF" also ends the data, as in MailKit's Pop3Stream ("some broken UNIX servers").
    /// A line starting with a single "." followed by other bytes (a server that did not stuff) is kept as received.
    /// Bytes after the terminator stay buffered for the next reply (pipelining, RFC 2449 section 6.6).
    /// </remarks>
    public async ValueTask<long> ReadMultilineAsync(Stream destination, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(destination);
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        long written = 0;
        var lineStart = true;
        try
        {
            while (true)
            {
                // Bytes from runStart to _pos are data waiting to be written; a removed dot or the terminator ends a run.
                var runStart = _pos;
                while (_pos < _end)
                {
                    if (lineStart)
                    {
                        if (_buffer[_pos] == (byte)'.')
                        {
                            var available = _end - _pos;
                            if (available == 1 || (available == 2 && _buffer[_pos + 1] == (byte)'\r'))
                                break; // "." or ".\r": cannot tell the terminator from data yet
                            var next = _buffer[_pos + 1];
                            if (next == (byte)'\n' || (next == (byte)'\r' && _buffer[_pos + 2] == (byte)'\n'))
                            {
                                written += await WriteRunAsync(destination, runStart, _pos, cancellationToken).ConfigureAwait(false);
                                _pos += next == (byte)'\n' ? 2 : 3;
                                return written;
                            }
                            if (next == (byte)'.')
                            {
                                written += await WriteRunAsync(destination, runStart, _pos, cancellationToken).ConfigureAwait(false);
                                _pos++;
                                runStart = _pos;
                            }
                        }
                        lineStart = false;
                    }

                    var lf = _buffer.AsSpan(_pos, _end - _pos).IndexOf((byte)'\n');
                    if (lf < 0)
                    {
                        _pos = _end;
                        break;
                    }
                    _pos += lf + 1;
                    lineStart = true;
                }

                written += await WriteRunAsync(destination, runStart, _pos, cancellationToken).ConfigureAwait(false);
                await FillAsync(idle).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw IdleTimeout();
        }
    }

    /// <summary>Queues a command line (CRLF is added) to be sent by <see cref="FlushAsync"/>.</summary>
    public void QueueLine(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        // A CR or LF inside a command would let data (a password, a user name) inject further commands.
        if (line.AsSpan().IndexOfAny('\r', '\n') >= 0)
            throw new ArgumentException("a POP3 command line cannot contain CR or LF", nameof(line));
        CommandEncoding.GetBytes(line, _outgoing);
        "\r\n"u8.CopyTo(_outgoing.GetSpan(2));
        _outgoing.Advance(2);
    }

    /// <summary>Sends every queued command line in one write.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (_outgoing.WrittenCount == 0)
            return;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        try
        {
            idle.CancelAfter(_timeout);
            await _stream.WriteAsync(_outgoing.WrittenMemory, idle.Token).ConfigureAwait(false);
            await _stream.FlushAsync(idle.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"the server accepted no data for {_timeout.TotalSeconds:0.#} s");
        }
        finally
        {
            _outgoing.ResetWrittenCount();
        }
    }

    /// <summary>Writes a command line at once.</summary>
    public ValueTask WriteLineAsync(string line, CancellationToken cancellationToken)
    {
        QueueLine(line);
        return FlushAsync(cancellationToken);
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _pos = _end = 0;
        if (buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(buffer);
    }

    // Pooled builders: these suspend once per network read or file write, hundreds of times for a large message.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> WriteRunAsync(Stream destination, int start, int end, CancellationToken cancellationToken)
    {
        if (end <= start)
            return 0;
        try
        {
            await destination.WriteAsync(_buffer.AsMemory(start, end - start), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new Pop3DestinationException(ex);
        }
        return end - start;
    }

    /// <summary>Moves unconsumed bytes to the front and reads more; the idle timer runs only while waiting for the peer.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FillAsync(CancellationTokenSource idle)
    {
        ObjectDisposedException.ThrowIf(_buffer.Length == 0, this);
        if (_pos > 0)
        {
            Buffer.BlockCopy(_buffer, _pos, _buffer, 0, _end - _pos);
            _end -= _pos;
            _pos = 0;
        }
        idle.CancelAfter(_timeout);
        var read = await _stream.ReadAsync(_buffer.AsMemory(_end), idle.Token).ConfigureAwait(false);
        idle.CancelAfter(Timeout.InfiniteTimeSpan);
        if (read == 0)
            throw new EndOfStreamException("the server closed the connection");
        _end += read;
    }

    private UpstreamPop3ProtocolException LineTooLong() =>
        new($"the server sent a reply line longer than {_maxLineLength} bytes");

    private TimeoutException IdleTimeout() =>
        new($"the server sent nothing for {_timeout.TotalSeconds:0.#} s");
}

/// <summary>Writing a multi-line reply's data to its destination failed (not the server's fault).</summary>
internal sealed class Pop3DestinationException(Exception inner) : Exception($"writing the message locally failed: {inner.Message}", inner);
