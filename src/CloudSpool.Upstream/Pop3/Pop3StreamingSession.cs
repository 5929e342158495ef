using System.Globalization;
using System.Security.Cryptography;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;

namespace CloudSpool.Upstream.Pop3;

/// <summary>
/// A POP3 maildrop as one scope, over CloudSpool's own streaming client: RETR data goes straight to the destination
/// (one pooled buffer, whatever the message size). Keys are the server's UIDL (RFC 1939 section 7); for a server
/// without UIDL, a hash of the message's header block (TOP n 0) and size. DELE only marks; the deletions apply at QUIT
/// in <see cref="CommitAsync"/>, and a session disposed without it deletes nothing.
/// </summary>
/// <remarks>
/// With PIPELINING (RFC 2449 section 6.6) and a plan (<see cref="PlanFetches"/>), the RETR commands of the next planned
/// messages are sent ahead, a bounded number and size at a time, and DELE commands join the same queue; replies are
/// read strictly in order. A fetch that does not match the plan discards the replies ahead of it.
/// </remarks>
internal sealed class Pop3StreamingSession : IUpstreamSession
{
    public const string Validity = UpstreamScopes.Pop3Validity;

    /// <summary>At most this many RETR commands in flight, the one being read included.</summary>
    internal const int MaxLookaheadCommands = 8;

    /// <summary>RETR commands are sent ahead only while the announced sizes in flight stay within this (one is always allowed).</summary>
    internal const long MaxLookaheadBytes = 1 << 20;

    /// <summary>
    /// At most this many commands of any kind in flight. Keeps the unread replies and unsent commands far below what the
    /// socket buffers hold, so that neither side can block writing while the other waits (RFC 2449 section 6.6).
    /// </summary>
    internal const int MaxOutstanding = 64;

    private readonly UpstreamPop3Engine _engine;
    private readonly AccountDefinition _account;
    private readonly Queue<UpstreamMessage> _plan = new();
    private readonly Queue<UpstreamMessage> _deferredDeletes = new();
    // Every message given a DELE in this session: all removed once QUIT is answered +OK.
    private readonly List<UpstreamMessage> _marked = [];
    private UpstreamException? _failure;
    private int _busy;

    private Pop3StreamingSession(UpstreamPop3Engine engine, AccountDefinition account)
    {
        _engine = engine;
        _account = account;
    }

    public IReadOnlyList<string> Scopes { get; } = [""];
    public UpstreamMailboxStatus? Status { get; private set; }

    /// <summary>What the server offers after login.</summary>
    internal UpstreamPop3Capabilities Capabilities => _engine.Capabilities;

    /// <summary>Most commands that were in flight at once.</summary>
    internal int PeakOutstanding => _engine.PeakOutstanding;

    internal bool IsSecure => _engine.IsSecure;

    /// <summary>Connects, negotiates TLS as the account says, and logs in. Throws <see cref="UpstreamException"/> with the kind of failure.</summary>
    public static async Task<Pop3StreamingSession> ConnectAsync(AccountDefinition account, string password, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var options = new UpstreamPop3EngineOptions(account.Host, account.EffectivePort, account.Tls, CertificateTrust.Create(account.TrustedCertificateFile), timeout);
        var stage = "connect";
        UpstreamPop3Engine? engine = null;
        try
        {
            engine = await UpstreamPop3Engine.ConnectAsync(options, cancellationToken).ConfigureAwait(false);
            stage = "login";
            await Pop3Login.LoginAsync(engine, account.Username, password, account.AuthMechanism, cancellationToken).ConfigureAwait(false);
            return new Pop3StreamingSession(engine, account);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (engine is not null)
                await engine.DisposeAsync().ConfigureAwait(false);
            throw Pop3Errors.Classify(ex, account.Host, account.EffectivePort, stage);
        }
        catch
        {
            if (engine is not null)
                await engine.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task<ScopeListing> OpenScopeAsync(string scope, CancellationToken cancellationToken)
    {
        using var busy = Enter();
        try
        {
            await DrainAsync(cancellationToken).ConfigureAwait(false);
            var pipelined = _engine.Capabilities.Pipelining;
            _engine.Enqueue(new UpstreamPop3Command("LIST", 0, Multiline: true));
            if (pipelined)
                _engine.Enqueue(new UpstreamPop3Command("UIDL", 0, Multiline: true));

            var lines = new List<string>();
            var list = await _engine.ReadReplyLinesAsync(lines, cancellationToken).ConfigureAwait(false);
            if (!list.IsOk)
                throw Fatal(new UpstreamException(UpstreamErrorKind.Protocol, $"{_account.Host} refused LIST: {list}"));
            var sizes = ParseListing(lines, "LIST", static (text, line) =>
                long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var size) ? size : throw NotUnderstood("LIST", line));

            if (!pipelined)
                _engine.Enqueue(new UpstreamPop3Command("UIDL", 0, Multiline: true));
            lines.Clear();
            var uidl = await _engine.ReadReplyLinesAsync(lines, cancellationToken).ConfigureAwait(false);

            IReadOnlyList<string> keys;
            if (uidl.IsOk)
            {
                var uids = ParseListing(lines, "UIDL", static (text, _) => text).ToDictionary(p => p.Number, p => p.Value);
                keys = sizes.Select(s => uids.TryGetValue(s.Number, out var uid)
                    ? UpstreamScopes.Pop3Key(uid)
                    : throw new UpstreamPop3ProtocolException($"UIDL lists no unique-id for message {s.Number}")).ToList();
            }
            else
            {
                keys = await HeaderKeysAsync(sizes, cancellationToken).ConfigureAwait(false);
            }

            Status = new UpstreamMailboxStatus(sizes.Count, sizes.Sum(s => s.Value));
            var messages = new List<UpstreamMessage>(sizes.Count);
            for (var i = 0; i < sizes.Count; i++)
                messages.Add(new UpstreamMessage(keys[i], sizes[i].Value, sizes[i].Number));
            return new ScopeListing(scope, Validity, messages);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw Fail(ex, "listing");
        }
    }

    /// <summary>Keys for a server without UIDL: SHA-256 of the header block (TOP n 0, RFC 1939 section 7) and the size.</summary>
    private async Task<IReadOnlyList<string>> HeaderKeysAsync(List<(int Number, long Value)> sizes, CancellationToken ct)
    {
        var keys = new List<string>(sizes.Count);
        using var sink = new HashSink();
        var sent = 0;
        while (keys.Count < sizes.Count)
        {
            while (sent < sizes.Count && (sent == keys.Count || (_engine.Capabilities.Pipelining && sent - keys.Count < MaxLookaheadCommands)))
            {
                _engine.Enqueue(new UpstreamPop3Command("TOP", sizes[sent].Number, Multiline: true, Extra: "0"));
                sent++;
            }
            var reply = await _engine.ReadReplyAsync(sink, ct).ConfigureAwait(false);
            if (!reply.IsOk)
                throw Fatal(new UpstreamException(UpstreamErrorKind.Protocol,
                    $"{_account.Host} supports neither UIDL nor TOP ({reply}): messages cannot be told apart between runs"));
            keys.Add($"{UpstreamScopes.Pop3HeaderPrefix}{Convert.ToHexStringLower(sink.GetHashAndReset())[..32]}-{sizes[keys.Count].Value}");
        }
        return keys;
    }

    /// <summary>The messages the engine will fetch, in order: their RETR commands may be sent ahead.</summary>
    public void PlanFetches(IReadOnlyList<UpstreamMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        _plan.Clear();
        foreach (var message in messages)
            _plan.Enqueue(message);
    }

    public async Task FetchAsync(UpstreamMessage message, Stream destination, CancellationToken cancellationToken)
    {
        using var busy = Enter();
        var number = (int)message.Handle;
        Pop3Reply reply;
        try
        {
            if (_engine.IsOutstanding(c => c.Verb == "RETR" && c.Number == number))
            {
                // Sent ahead: replies before it belong to DELEs, or to planned messages the engine skipped.
                while (_engine.NextReply is not { Verb: "RETR" } next || next.Number != number)
                    await ConsumeNextAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // Not planned (or no pipelining): everything in flight is read first, then a plain RETR.
                await DrainAsync(cancellationToken).ConfigureAwait(false);
                SkipPlanThrough(number);
                _engine.Enqueue(Retr(message));
            }

            SendAhead();
            reply = await _engine.ReadReplyAsync(destination, cancellationToken).ConfigureAwait(false);
            SendAhead();
            await _engine.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw Fail(ex, $"RETR of message {message.Key}");
        }

        // -ERR for this one message (RFC 1939 section 9; e.g. Dovecot's "-ERR Message 3 expunged." for a file it cannot
        // read): the session is still usable.
        if (!reply.IsOk)
            throw new UpstreamMessageException($"server refused RETR of message {number}: {reply}");
    }

    public async Task MarkDeletedAsync(UpstreamMessage message, CancellationToken cancellationToken)
    {
        using var busy = Enter();
        try
        {
            _marked.Add(message);
            if (!_engine.Capabilities.Pipelining)
            {
                _engine.Enqueue(Dele(message));
                var reply = await _engine.ReadReplyAsync(null, cancellationToken).ConfigureAwait(false);
                if (!reply.IsOk)
                    throw DeleRefused(message, reply);
                return;
            }

            // Pipelined: the reply is read later, in order. At the in-flight limit, replies to earlier DELEs are read to
            // make room; behind an unread RETR reply the DELE waits, unsent, for the next fetch or the commit.
            _deferredDeletes.Enqueue(message);
            SendDeferredDeletes();
            while (_deferredDeletes.Count > 0 && _engine.NextReply is { Verb: "DELE" })
            {
                await ConsumeNextAsync(cancellationToken).ConfigureAwait(false);
                SendDeferredDeletes();
            }
            await _engine.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw Fail(ex, $"DELE of message {message.Key}");
        }
    }

    /// <summary>POP3 removes nothing before QUIT.</summary>
    public Task<IReadOnlyList<UpstreamMessage>> CloseScopeAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<UpstreamMessage>>([]);

    public async Task<IReadOnlyList<UpstreamMessage>> CommitAsync(CancellationToken cancellationToken)
    {
        using var busy = Enter();
        try
        {
            // Every DELE must have been answered +OK before QUIT makes the deletions real. RETRs sent ahead for messages
            // that were never fetched are read and dropped here (a plan that matches the fetches leaves none).
            await DrainAsync(cancellationToken).ConfigureAwait(false);
            _plan.Clear();
            // QUIT enters the UPDATE state: the server removes the messages marked with DELE (RFC 1939 section 6).
            var reply = await _engine.ExecuteAsync("QUIT", null, cancellationToken).ConfigureAwait(false);
            if (!reply.IsOk)
                throw Fatal(new UpstreamException(UpstreamErrorKind.Protocol, $"{_account.Host} could not apply the deletions at QUIT: {reply}"));
            // Every DELE was answered +OK, and QUIT too: the server has removed them all.
            return [.. _marked];
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw Fail(ex, "QUIT");
        }
        finally
        {
            await _engine.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Closes the connection without QUIT: per RFC 1939 section 6 the server deletes nothing.</summary>
    public ValueTask DisposeAsync() => _engine.DisposeAsync();

    private static UpstreamPop3Command Retr(UpstreamMessage message) =>
        new("RETR", (int)message.Handle, Multiline: true, AnnouncedSize: message.Size, Tag: message);

    private static UpstreamPop3Command Dele(UpstreamMessage message) =>
        new("DELE", (int)message.Handle, Multiline: false, Tag: message);

    /// <summary>Sends what may go ahead now: waiting DELEs, then RETRs of the next planned messages within the limits.</summary>
    private void SendAhead()
    {
        if (!_engine.Capabilities.Pipelining)
            return;
        SendDeferredDeletes();
        while (_plan.Count > 0 && _engine.OutstandingCount < MaxOutstanding)
        {
            var next = _plan.Peek();
            var inFlight = _engine.OutstandingMultilineCount;
            if (inFlight > 0 && (inFlight >= MaxLookaheadCommands || _engine.OutstandingAnnouncedBytes + next.Size > MaxLookaheadBytes))
                break;
            _engine.Enqueue(Retr(_plan.Dequeue()));
        }
    }

    private void SendDeferredDeletes()
    {
        while (_deferredDeletes.Count > 0 && _engine.OutstandingCount < MaxOutstanding)
            _engine.Enqueue(Dele(_deferredDeletes.Dequeue()));
    }

    /// <summary>Reads every reply in flight (RETR data discarded, DELE replies checked) and sends every waiting DELE.</summary>
    private async Task DrainAsync(CancellationToken ct)
    {
        while (true)
        {
            SendDeferredDeletes();
            if (_engine.OutstandingCount == 0)
                return;
            await ConsumeNextAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task ConsumeNextAsync(CancellationToken ct)
    {
        var next = _engine.NextReply ?? throw new InvalidOperationException("no reply is due");
        var reply = await _engine.ReadReplyAsync(null, ct).ConfigureAwait(false);
        if (next.Verb == "DELE" && !reply.IsOk)
            throw DeleRefused((UpstreamMessage)next.Tag!, reply);
        // A RETR sent ahead for a message the engine did not ask for after all: its data (or -ERR) is dropped.
    }

    private void SkipPlanThrough(int number)
    {
        if (!_plan.Any(m => (int)m.Handle == number))
            return;
        while (_plan.TryDequeue(out var skipped) && (int)skipped.Handle != number)
        {
            // Planned messages before this one will not be fetched now.
        }
    }

    private UpstreamException DeleRefused(UpstreamMessage message, Pop3Reply reply) =>
        new(UpstreamErrorKind.Protocol, $"{_account.Host} refused DELE of message {message.Key}: {reply}");

    /// <summary>A failure after which this session must not be used again, whatever state the connection is in.</summary>
    private UpstreamException Fatal(UpstreamException failure)
    {
        _failure ??= failure;
        return failure;
    }

    private UpstreamException Fail(Exception ex, string stage)
    {
        var failure = Pop3Errors.Classify(ex, _account.Host, _account.EffectivePort, stage);
        if (_engine.IsBroken)
            _failure ??= failure;
        return failure;
    }

    private BusyScope Enter()
    {
        if (_failure is { } failure)
            throw new UpstreamException(failure.Kind, $"the session with {_account.Host}:{_account.EffectivePort} is unusable after an earlier failure: {failure.Message}", failure);
        if (_engine.IsBroken)
            throw new UpstreamException(UpstreamErrorKind.Connect, $"the session with {_account.Host}:{_account.EffectivePort} is closed or was interrupted");
        if (Interlocked.Exchange(ref _busy, 1) != 0)
            throw new InvalidOperationException("a POP3 session runs one operation at a time");
        return new BusyScope(this);
    }

    private static List<(int Number, T Value)> ParseListing<T>(List<string> lines, string command, Func<string, string, T> value)
    {
        // "msg SP rest" per line (RFC 1939 section 5 scan listing, section 7 unique-id listing); extra words after it are allowed.
        var result = new List<(int Number, T Value)>(lines.Count);
        var seen = new HashSet<int>();
        foreach (var line in lines)
        {
            var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length < 2 || !int.TryParse(words[0], NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1 || !seen.Add(number))
                throw NotUnderstood(command, line);
            result.Add((number, value(words[1], line)));
        }
        result.Sort((a, b) => a.Number.CompareTo(b.Number));
        return result;
    }

    private static UpstreamPop3ProtocolException NotUnderstood(string command, string line) =>
        new($"{command} line not understood: \"{Pop3Reply.Printable(line)}\"");

    private readonly struct BusyScope(Pop3StreamingSession session) : IDisposable
    {
        public void Dispose() => Volatile.Write(ref session._busy, 0);
    }

    /// <summary>A write-only stream that hashes what it is given (TOP data for header keys).</summary>
    private sealed class HashSink : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        public byte[] GetHashAndReset() => _hash.GetHashAndReset();

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => _hash.AppendData(buffer, offset, count);
        public override void Write(ReadOnlySpan<byte> buffer) => _hash.AppendData(buffer);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _hash.AppendData(buffer.Span);
            return ValueTask.CompletedTask;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
