using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net.Security;
using System.Text;

namespace CloudSpool.Pop3.Protocol;

/// <summary>What <see cref="Pop3Connection.ReadLineAsync"/> found.</summary>
internal enum Pop3LineStatus
{
    /// <summary>A complete line; its text is in <see cref="Pop3Line.Text"/>.</summary>
    Line,

    /// <summary>A line longer than the cap: it was discarded up to and including its line end, never buffered whole.</summary>
    TooLong,

    /// <summary>The client closed its side (a partial last line is dropped).</summary>
    EndOfStream,
}

/// <summary>One line from the client, without its line end.</summary>
internal readonly record struct Pop3Line(Pop3LineStatus Status, string Text);

/// <summary>
/// The byte layer of a server session: reads command lines with a hard length cap, buffers replies and sends them
/// when the client's pipelined commands are used up (RFC 2449 section 6.6), and switches to TLS for STLS.
/// It knows nothing of commands or states.
/// </summary>
/// <remarks>
/// Every wait on the client (a read, or a flush the client does not drain) is bounded by <see cref="IdleTimeout"/>
/// and then fails with <see cref="TimeoutException"/>. I/O failures surface as the stream's exceptions; after any
/// exception the connection is unusable.
/// </remarks>
internal sealed class Pop3Connection : IAsyncDisposable
{
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true);
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 4096, leaveOpen: true);
    private static readonly Encoding LineEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private Stream _transport;
    private PipeReader _input;
    private PipeWriter _output;
    private bool _disposed;

    public Pop3Connection(Stream transport, bool isSecure, TimeSpan idleTimeout)
    {
        _transport = transport;
        IsSecure = isSecure;
        IdleTimeout = idleTimeout;
        _input = PipeReader.Create(transport, ReaderOptions);
        _output = PipeWriter.Create(transport, WriterOptions);
    }

    /// <summary>True when the bytes travel over TLS.</summary>
    public bool IsSecure { get; private set; }

    /// <summary>How long a read or a flush may wait on the client.</summary>
    public TimeSpan IdleTimeout { get; set; }

    /// <summary>Where replies and message data are written; <see cref="FlushAsync"/> sends them.</summary>
    public PipeWriter Output => _output;

    /// <summary>
    /// True from the moment the connection waits for the client's next bytes until they arrive; it stays true when
    /// that wait ends in an exception, so the session knows the exception did not interrupt a reply.
    /// </summary>
    public bool WaitingForInput { get; private set; }

    /// <summary>A flush failed or was cancelled: the output pipe is in an unknown state and must not be written to.</summary>
    public bool OutputFaulted { get; private set; }

    /// <summary>Bytes written and not yet sent.</summary>
    public long UnflushedBytes => _output.CanGetUnflushedBytes ? _output.UnflushedBytes : 0;

    /// <summary>
    /// Reads the next line. <paramref name="maxOctets"/> counts the line end (RFC 2449 section 4: 255 octets for a
    /// command). A longer line is consumed and discarded as it arrives, so memory stays bounded whatever the client
    /// sends. Pending replies are flushed before waiting for the client, never while whole pipelined commands are
    /// still buffered.
    /// </summary>
    /// <remarks>
    /// The whole line must arrive within <see cref="IdleTimeout"/> of the start of the wait: bytes that trickle in
    /// without completing a line (a "slowloris" client sending one byte a second) do not keep a session alive.
    /// </remarks>
    public async ValueTask<Pop3Line> ReadLineAsync(int maxOctets, CancellationToken cancellationToken)
    {
        var discarding = false;
        var mustWait = false;
        CancellationTokenSource? deadline = null;
        try
        {
            while (true)
            {
                ReadResult result;
                if (mustWait || !_input.TryRead(out result))
                {
                    await FlushAsync(cancellationToken).ConfigureAwait(false);
                    if (deadline is null)
                    {
                        deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                        deadline.CancelAfter(IdleTimeout);
                    }
                    WaitingForInput = true;
                    result = await ReadBeforeDeadlineAsync(deadline.Token, cancellationToken).ConfigureAwait(false);
                    WaitingForInput = false;
                }

                var buffer = result.Buffer;
                if (buffer.PositionOf((byte)'\n') is { } lf)
                {
                    var next = buffer.GetPosition(1, lf);
                    var line = buffer.Slice(0, next);
                    if (discarding || line.Length > maxOctets)
                    {
                        _input.AdvanceTo(next);
                        return new Pop3Line(Pop3LineStatus.TooLong, string.Empty);
                    }
                    var text = Decode(line);
                    _input.AdvanceTo(next);
                    return new Pop3Line(Pop3LineStatus.Line, text);
                }

                if (result.IsCompleted)
                {
                    _input.AdvanceTo(buffer.End);
                    return new Pop3Line(Pop3LineStatus.EndOfStream, string.Empty);
                }

                if (discarding || buffer.Length >= maxOctets)
                {
                    // No line end within the cap: the line is too long whatever follows. Drop what arrived.
                    discarding = true;
                    _input.AdvanceTo(buffer.End);
                }
                else
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                }
                mustWait = true;
            }
        }
        finally
        {
            deadline?.Dispose();
        }
    }

    /// <summary>
    /// The complete lines the client has sent that <see cref="ReadLineAsync"/> has not returned yet, at most
    /// <paramref name="max"/>, up to the first one longer than <paramref name="maxOctets"/>: the commands a pipelining
    /// client already sent. Never waits and consumes nothing.
    /// </summary>
    public IReadOnlyList<string> PeekLines(int max, int maxOctets)
    {
        if (!_input.TryRead(out var result))
            return [];
        var buffer = result.Buffer;
        var lines = new List<string>();
        try
        {
            var rest = buffer;
            while (lines.Count < max && rest.PositionOf((byte)'\n') is { } lf)
            {
                var next = rest.GetPosition(1, lf);
                var line = rest.Slice(0, next);
                if (line.Length > maxOctets)
                    break;
                lines.Add(Decode(line));
                rest = rest.Slice(next);
            }
        }
        finally
        {
            // Nothing consumed or examined: the next read returns the same bytes without waiting.
            _input.AdvanceTo(buffer.Start, buffer.Start);
        }
        return lines;
    }

    private async ValueTask<ReadResult> ReadBeforeDeadlineAsync(CancellationToken deadline, CancellationToken cancellationToken)
    {
        try
        {
            var result = await _input.ReadAsync(deadline).ConfigureAwait(false);
            if (result.IsCanceled)
                throw new OperationCanceledException(deadline);
            return result;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            throw new TimeoutException("the client sent no complete line for longer than " + IdleTimeout);
        }
    }

    /// <summary>Queues one reply line; <paramref name="line"/> must be ASCII without CR or LF.</summary>
    public void WriteLine(string line)
    {
        Encoding.ASCII.GetBytes(line.AsSpan(), _output);
        var end = _output.GetSpan(2);
        end[0] = (byte)'\r';
        end[1] = (byte)'\n';
        _output.Advance(2);
    }

    /// <summary>
    /// Queues a scan line of a LIST or UIDL listing (RFC 1939 sections 5 and 7), "number value", formatted straight
    /// into the output: a listing of 100,000 messages makes no string per line. <paramref name="value"/> must be ASCII
    /// without CR or LF.
    /// </summary>
    public void WriteScanLine(int number, string value)
    {
        var span = _output.GetSpan(MaxNumberOctets + value.Length + 3);
        var length = WriteNumberAndSpace(span, number);
        length += Encoding.ASCII.GetBytes(value, span[length..]);
        _output.Advance(length + WriteCrlf(span[length..]));
    }

    /// <inheritdoc cref="WriteScanLine(int, string)"/>
    public void WriteScanLine(int number, long value)
    {
        var span = _output.GetSpan((2 * MaxNumberOctets) + 3);
        var length = WriteNumberAndSpace(span, number);
        value.TryFormat(span[length..], out var digits, default, CultureInfo.InvariantCulture);
        length += digits;
        _output.Advance(length + WriteCrlf(span[length..]));
    }

    /// <summary>The most octets a decimal int or long takes.</summary>
    private const int MaxNumberOctets = 20;

    private static int WriteNumberAndSpace(Span<byte> span, int number)
    {
        number.TryFormat(span, out var length, default, CultureInfo.InvariantCulture);
        span[length] = (byte)' ';
        return length + 1;
    }

    private static int WriteCrlf(Span<byte> span)
    {
        span[0] = (byte)'\r';
        span[1] = (byte)'\n';
        return 2;
    }

    /// <summary>Sends what was queued.</summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        if (OutputFaulted)
            throw new IOException("an earlier write to the client failed");
        if (UnflushedBytes == 0 && _output.CanGetUnflushedBytes)
            return;
        try
        {
            await WithIdleTimeoutAsync(static (output, token) => output.FlushAsync(token), _output, cancellationToken)
                .ConfigureAwait(false);
        }
        catch
        {
            OutputFaulted = true;
            throw;
        }
    }

    /// <summary>
    /// Flushes pending replies (the +OK to STLS), throws away every byte the client sent after the STLS line that is
    /// already buffered, and runs the TLS handshake (RFC 2595 section 4). Anything received in plaintext before the
    /// handshake could have been injected by a man in the middle (the STARTTLS command-injection flaw,
    /// CVE-2011-0411), so none of it may be executed after the upgrade.
    /// </summary>
    public async ValueTask UpgradeToTlsAsync(SslServerAuthenticationOptions options, CancellationToken cancellationToken)
    {
        await FlushAsync(cancellationToken).ConfigureAwait(false);
        await _input.CompleteAsync().ConfigureAwait(false);
        await _output.CompleteAsync().ConfigureAwait(false);
        var tls = new SslStream(_transport, leaveInnerStreamOpen: false);
        _transport = tls;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(IdleTimeout);
            try
            {
                await tls.AuthenticateAsServerAsync(options, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException("the TLS handshake did not complete in time");
            }
        }
        _input = PipeReader.Create(tls, ReaderOptions);
        _output = PipeWriter.Create(tls, WriterOptions);
        IsSecure = true;
    }

    private async ValueTask<T> WithIdleTimeoutAsync<TState, T>(
        Func<TState, CancellationToken, ValueTask<T>> operation, TState state, CancellationToken cancellationToken)
    {
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        idle.CancelAfter(IdleTimeout);
        try
        {
            var result = await operation(state, idle.Token).ConfigureAwait(false);
            if (result is ReadResult { IsCanceled: true } or FlushResult { IsCanceled: true })
                throw new OperationCanceledException(idle.Token);
            return result;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && idle.IsCancellationRequested)
        {
            throw new TimeoutException("the client was idle for longer than " + IdleTimeout);
        }
    }

    private static string Decode(ReadOnlySequence<byte> line)
    {
        // RFC 1939 section 3: commands end in CRLF; a bare LF is accepted too, as most servers do.
        var length = line.Length - 1;
        if (length > 0 && line.Slice(length - 1, 1).FirstSpan[0] == (byte)'\r')
            length--;
        return LineEncoding.GetString(line.Slice(0, length));
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        await _input.CompleteAsync().ConfigureAwait(false);
        // Completing with an exception drops unsent bytes instead of writing them to a client that may not read.
        await _output.CompleteAsync(new ObjectDisposedException(nameof(Pop3Connection))).ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
    }
}
