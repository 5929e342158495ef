using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using MailKit.Security;

namespace CloudSpool.Upstream.Pop3;

/// <summary>How to reach a POP3 server.</summary>
internal sealed record UpstreamPop3EngineOptions(string Host, int Port, TlsMode Tls, RemoteCertificateValidationCallback? CertificateValidation, TimeSpan Timeout)
{
    public int MaxLineLength { get; init; } = Pop3Wire.DefaultMaxLineLength;
    public int BufferSize { get; init; } = Pop3Wire.DefaultBufferSize;
}

/// <summary>
/// The command layer of a POP3 client: connection and TLS (implicit, or STLS per RFC 2595), greeting, CAPA
/// (RFC 2449), the login primitives, and the queue of commands whose replies are outstanding. Replies are read
/// strictly in the order the commands were sent, so with PIPELINING (RFC 2449 section 6.6) several commands may
/// be in flight; without it the caller keeps one at a time.
/// </summary>
/// <remarks>
/// "The server said no" comes back as a <see cref="Pop3Reply"/> with <c>IsOk</c> false and the connection stays usable.
/// Any exception from an I/O method means the server made no sense or the connection failed: <see cref="IsBroken"/>
/// is then true and nothing more may be sent.
/// </remarks>
internal sealed class UpstreamPop3Engine : IAsyncDisposable
{
    private readonly UpstreamPop3EngineOptions _options;
    private readonly Queue<UpstreamPop3Command> _outstanding = new();
    private Stream _stream;
    private Pop3Wire _wire;
    private bool _disposed;

    /// <summary>How many commands at the tail of the outstanding queue have not been written yet.</summary>
    private int _unsent;

    /// <summary>Why the last write failed; replies to commands written before it can still be read.</summary>
    private Exception? _writeFailure;

    private UpstreamPop3Engine(UpstreamPop3EngineOptions options, Stream stream)
    {
        _options = options;
        _stream = stream;
        _wire = NewWire(stream);
    }

    public string Host => _options.Host;
    public int Port => _options.Port;
    public UpstreamPop3Capabilities Capabilities { get; private set; } = UpstreamPop3Capabilities.Unknown;

    /// <summary>The APOP timestamp of the greeting, brackets included (RFC 1939 section 7), or null.</summary>
    public string? ApopTimestamp { get; private set; }

    public bool IsSecure => _stream is SslStream;
    public bool IsBroken { get; private set; }

    /// <summary>Commands sent (or queued to be sent) whose replies have not been read yet.</summary>
    public int OutstandingCount => _outstanding.Count;

    /// <summary>RETR and TOP commands among the outstanding ones, and the sum of their announced sizes.</summary>
    public int OutstandingMultilineCount { get; private set; }
    public long OutstandingAnnouncedBytes { get; private set; }

    /// <summary>Most commands ever outstanding at once (to observe pipelining).</summary>
    public int PeakOutstanding { get; private set; }

    /// <summary>The command whose reply comes next, or null.</summary>
    public UpstreamPop3Command? NextReply => _outstanding.TryPeek(out var head) ? head : null;

    public bool IsOutstanding(Predicate<UpstreamPop3Command> match)
    {
        foreach (var command in _outstanding)
        {
            if (match(command))
                return true;
        }
        return false;
    }

    /// <summary>
    /// Connects, negotiates TLS as configured, reads the greeting and the capabilities. For STLS the server must
    /// accept it; its capabilities are then read again over TLS (RFC 2595 section 4).
    /// </summary>
    public static async Task<UpstreamPop3Engine> ConnectAsync(UpstreamPop3EngineOptions options, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream? stream = null;
        UpstreamPop3Engine? engine = null;
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                timeout.CancelAfter(options.Timeout);
                try
                {
                    await socket.ConnectAsync(options.Host, options.Port, timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"no TCP connection within {options.Timeout.TotalSeconds:0.#} s");
                }
            }

            stream = new NetworkStream(socket, ownsSocket: true);
            if (options.Tls == TlsMode.Implicit)
                stream = await NegotiateTlsAsync(stream, options, cancellationToken).ConfigureAwait(false);
            engine = new UpstreamPop3Engine(options, stream);
            await engine.ReadGreetingAsync(cancellationToken).ConfigureAwait(false);
            await engine.QueryCapabilitiesAsync(cancellationToken).ConfigureAwait(false);
            if (options.Tls == TlsMode.StartTls)
                await engine.StartTlsAsync(cancellationToken).ConfigureAwait(false);
            return engine;
        }
        catch
        {
            if (engine is not null)
                await engine.DisposeAsync().ConfigureAwait(false);
            else if (stream is not null)
                await stream.DisposeAsync().ConfigureAwait(false);
            else
                socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads CAPA again (after login the list may differ, RFC 2449 section 5). A server without CAPA answers -ERR.</summary>
    public async Task QueryCapabilitiesAsync(CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        Enqueue(new UpstreamPop3Command("CAPA", 0, Multiline: true));
        var reply = await ReadReplyLinesAsync(lines, cancellationToken).ConfigureAwait(false);
        Capabilities = reply.IsOk ? UpstreamPop3Capabilities.Parse(lines) : UpstreamPop3Capabilities.Unknown;
    }

    /// <summary>Queues a command; it is sent by <see cref="FlushAsync"/> or before the next reply is read.</summary>
    public void Enqueue(UpstreamPop3Command command)
    {
        ThrowIfUnusable();
        if (!Capabilities.Pipelining && _outstanding.Count > 0)
            throw new InvalidOperationException($"{command.Verb} while {_outstanding.Peek().Verb} is outstanding, and the server does not offer PIPELINING");
        _wire.QueueLine(command.Line);
        _outstanding.Enqueue(command);
        _unsent++;
        if (command.CarriesMessageData)
        {
            OutstandingMultilineCount++;
            OutstandingAnnouncedBytes += command.AnnouncedSize;
        }
        PeakOutstanding = Math.Max(PeakOutstanding, _outstanding.Count);
    }

    /// <summary>
    /// Sends the queued commands. A failed write does not throw here: the peer may have sent replies (whole messages)
    /// before it went away, and those are still read; the failure surfaces when a reply to an unsent command is due.
    /// </summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        ThrowIfUnusable();
        try
        {
            await SendQueuedAsync(cancellationToken, replyDue: false).ConfigureAwait(false);
        }
        catch
        {
            IsBroken = true;
            throw;
        }
    }

    /// <summary>
    /// Reads the reply to the oldest outstanding command. For a multi-line command answered +OK, its data is copied to
    /// <paramref name="body"/> (dot-stuffing undone), or discarded when it is null.
    /// </summary>
    public async ValueTask<Pop3Reply> ReadReplyAsync(Stream? body, CancellationToken cancellationToken)
    {
        var command = StartReply();
        try
        {
            await SendQueuedAsync(cancellationToken, replyDue: true).ConfigureAwait(false);
            var reply = Pop3Reply.Parse(await _wire.ReadLineAsync(cancellationToken).ConfigureAwait(false), command.Verb);
            if (reply.IsOk && command.Multiline)
                await _wire.ReadMultilineAsync(body ?? Stream.Null, cancellationToken).ConfigureAwait(false);
            EndReply();
            return reply;
        }
        catch
        {
            IsBroken = true;
            throw;
        }
    }

    /// <summary>Reads the reply to the oldest outstanding command, a multi-line one whose data lines are text (CAPA, LIST, UIDL).</summary>
    public async ValueTask<Pop3Reply> ReadReplyLinesAsync(List<string> lines, CancellationToken cancellationToken)
    {
        var command = StartReply();
        if (!command.Multiline)
            throw new InvalidOperationException($"{command.Verb} has no multi-line reply");
        try
        {
            await SendQueuedAsync(cancellationToken, replyDue: true).ConfigureAwait(false);
            var reply = Pop3Reply.Parse(await _wire.ReadLineAsync(cancellationToken).ConfigureAwait(false), command.Verb);
            if (reply.IsOk)
            {
                while (await _wire.ReadMultilineLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
                    lines.Add(line);
            }
            EndReply();
            return reply;
        }
        catch
        {
            IsBroken = true;
            throw;
        }
    }

    /// <summary>Sends one single-line command and reads its reply (nothing else may be outstanding).</summary>
    public async ValueTask<Pop3Reply> ExecuteAsync(string verb, string? arguments, CancellationToken cancellationToken)
    {
        if (_outstanding.Count > 0)
            throw new InvalidOperationException($"{verb} while {_outstanding.Peek().Verb} is outstanding");
        Enqueue(new UpstreamPop3Command(verb, 0, Multiline: false, Extra: arguments));
        return await ReadReplyAsync(null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// One SASL exchange (RFC 5034 section 4): AUTH, then a response line per "+ challenge" line, until +OK or -ERR.
    /// No initial response is sent (as MailKit does), for servers that predate RFC 5034.
    /// </summary>
    public async Task<Pop3Reply> AuthenticateAsync(SaslMechanism mechanism, CancellationToken cancellationToken)
    {
        if (_outstanding.Count > 0)
            throw new InvalidOperationException("AUTH while another command is outstanding");
        ThrowIfUnusable();
        try
        {
            await _wire.WriteLineAsync("AUTH " + mechanism.MechanismName, cancellationToken).ConfigureAwait(false);
            while (true)
            {
                var line = await _wire.ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (Pop3Reply.TryParse(line, out var reply))
                    return reply;
                if (line != "+" && !line.StartsWith("+ ", StringComparison.Ordinal))
                    throw new UpstreamPop3ProtocolException($"unexpected reply during AUTH {mechanism.MechanismName}: \"{Pop3Reply.Printable(line)}\"");

                string response;
                try
                {
                    response = await mechanism.ChallengeAsync(line.Length > 2 ? line[2..].Trim() : "", cancellationToken).ConfigureAwait(false);
                }
                catch (SaslException ex)
                {
                    // RFC 5034 section 4: "*" cancels the exchange; the server answers -ERR.
                    await _wire.WriteLineAsync("*", cancellationToken).ConfigureAwait(false);
                    var cancelled = Pop3Reply.Parse(await _wire.ReadLineAsync(cancellationToken).ConfigureAwait(false), "AUTH *");
                    throw new UpstreamException(UpstreamErrorKind.Authentication,
                        $"{Host} sent a SASL {mechanism.MechanismName} challenge that could not be answered ({ex.Message}); the exchange was cancelled: {cancelled}", ex);
                }
                await _wire.WriteLineAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not UpstreamException)
        {
            IsBroken = true;
            throw;
        }
    }

    /// <summary>APOP (RFC 1939 section 7): the MD5 digest of the greeting's timestamp and the password.</summary>
    public ValueTask<Pop3Reply> ApopAsync(string user, string password, CancellationToken cancellationToken)
    {
        var timestamp = ApopTimestamp ?? throw new InvalidOperationException("the greeting had no APOP timestamp");
#pragma warning disable CA5351 // MD5 is what APOP is defined with.
        var digest = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(timestamp + password)));
#pragma warning restore CA5351
        return ExecuteAsync("APOP", user + " " + digest, cancellationToken);
    }

    /// <summary>Closes the connection at once. Without QUIT the server deletes nothing (RFC 1939 section 6).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        IsBroken = true;
        _wire.Dispose();
        await _stream.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ReadGreetingAsync(CancellationToken cancellationToken)
    {
        string line;
        try
        {
            line = await _wire.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            IsBroken = true;
            throw;
        }
        if (!Pop3Reply.TryParse(line, out var greeting))
        {
            IsBroken = true;
            throw new UpstreamPop3ProtocolException($"the greeting is not POP3: \"{Pop3Reply.Printable(line)}\"");
        }
        if (!greeting.IsOk)
            throw new UpstreamException(UpstreamErrorKind.Connect, $"{Host}:{Port} refused the session: {greeting}");
        ApopTimestamp = FindApopTimestamp(greeting.Text);
    }

    /// <summary>The "&lt;...@...&gt;" msg-id in the greeting (RFC 1939 section 7), or null.</summary>
    internal static string? FindApopTimestamp(string greeting)
    {
        var open = greeting.IndexOf('<');
        if (open < 0)
            return null;
        var close = greeting.IndexOf('>', open + 1);
        if (close < 0)
            return null;
        var candidate = greeting[open..(close + 1)];
        return candidate.Contains('@') && !candidate.Any(char.IsWhiteSpace) ? candidate : null;
    }

    private async Task StartTlsAsync(CancellationToken cancellationToken)
    {
        if (Capabilities.Known && !Capabilities.Stls)
            throw new UpstreamException(UpstreamErrorKind.Tls, $"{Host}:{Port} does not offer STLS (RFC 2595), which this account requires (tls starttls)");
        var reply = await ExecuteAsync("STLS", null, cancellationToken).ConfigureAwait(false);
        if (!reply.IsOk)
            throw new UpstreamException(UpstreamErrorKind.Tls, $"{Host}:{Port} refused STLS, which this account requires (tls starttls): {reply}");
        if (_wire.BufferedCount > 0)
        {
            // Bytes after the +OK were sent in plain text before TLS began: whatever they are (a man-in-the-middle
            // injecting replies, as in CVE-2011-0411 for SMTP), they must not be taken as the server's words.
            IsBroken = true;
            throw new UpstreamPop3ProtocolException($"the server sent {_wire.BufferedCount} bytes after its STLS reply, before TLS began; refusing to continue");
        }

        _wire.Dispose();
        try
        {
            _stream = await NegotiateTlsAsync(_stream, _options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            IsBroken = true;
            throw;
        }
        _wire = NewWire(_stream);
        // RFC 2595 section 4: forget what was learnt before TLS and ask again.
        Capabilities = UpstreamPop3Capabilities.Unknown;
        await QueryCapabilitiesAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task<SslStream> NegotiateTlsAsync(Stream inner, UpstreamPop3EngineOptions options, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(inner, leaveInnerStreamOpen: false);
        var authentication = new SslClientAuthenticationOptions
        {
            TargetHost = options.Host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            // Revocation is checked as MailKit's default did (CheckCertificateRevocation = true).
            CertificateRevocationCheckMode = X509RevocationMode.Online,
            RemoteCertificateValidationCallback = options.CertificateValidation,
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Timeout);
        try
        {
            await ssl.AuthenticateAsClientAsync(authentication, timeout.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new TimeoutException($"the TLS handshake did not complete within {options.Timeout.TotalSeconds:0.#} s");
        }
        catch
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Writes the queued commands unless an earlier write failed. When a reply is due next and it belongs to a command
    /// that was never written, throws that failure.
    /// </summary>
    private async ValueTask SendQueuedAsync(CancellationToken cancellationToken, bool replyDue)
    {
        if (_writeFailure is null && _unsent > 0)
        {
            try
            {
                await _wire.FlushAsync(cancellationToken).ConfigureAwait(false);
                _unsent = 0;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // E.g. a reset connection: the replies already received stay readable (RFC 2449 section 6.6 pipelining).
                _writeFailure = ex;
            }
        }
        if (replyDue && _writeFailure is not null && _outstanding.Count <= _unsent)
            ExceptionDispatchInfo.Throw(_writeFailure);
    }

    private Pop3Wire NewWire(Stream stream) => new(stream, _options.Timeout, _options.MaxLineLength, _options.BufferSize);

    private UpstreamPop3Command StartReply()
    {
        ThrowIfUnusable();
        return _outstanding.TryPeek(out var head) ? head : throw new InvalidOperationException("no command is waiting for its reply");
    }

    private void EndReply()
    {
        var command = _outstanding.Dequeue();
        if (command.CarriesMessageData)
        {
            OutstandingMultilineCount--;
            OutstandingAnnouncedBytes -= command.AnnouncedSize;
        }
    }

    private void ThrowIfUnusable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsBroken)
            throw new InvalidOperationException("the POP3 connection is unusable after an earlier failure");
    }
}
