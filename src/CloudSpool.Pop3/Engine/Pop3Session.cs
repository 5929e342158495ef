using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using CloudSpool.Pop3.Protocol;

namespace CloudSpool.Pop3.Engine;

/// <summary>
/// One POP3 session: reads a command line, checks it against <see cref="Pop3StateTable"/>, runs its handler and
/// moves to the next state the table names. It owns the maildrop from login to the end and releases it whatever
/// happens; deletions are applied only by QUIT from TRANSACTION (RFC 1939 section 6).
/// </summary>
/// <remarks>
/// <see cref="RunAsync"/> never throws: whatever the client sends or does, the session ends with the connection
/// closed and the failure logged. A client is answered -ERR and kept when it is wrong ("the peer said no"); it is
/// disconnected when the connection cannot carry on ("the peer made no sense": over the bad-command limit, idle,
/// a message failing mid-transfer, a failed TLS handshake).
/// </remarks>
internal sealed class Pop3Session : IAsyncDisposable
{
    /// <summary>RFC 2449 section 4: a command line is at most 255 octets, CRLF included.</summary>
    public const int MaxCommandOctets = 255;

    /// <summary>
    /// RFC 5034 section 4 exempts base64 SASL responses from the 255-octet limit; this still bounds them
    /// (a PLAIN response with long names and password is far below it).
    /// </summary>
    public const int MaxSaslResponseOctets = 8 * 1024;

    private const int FlushThreshold = 32 * 1024;

    private readonly Pop3ServerContext _context;
    private readonly Pop3Connection _connection;
    private readonly IPEndPoint? _remote;
    private bool _closing;
    private int _badCommands;
    private IMaildrop? _maildrop;
    private CancellationTokenSource? _running;
    private CancellationTokenRegistration _revocation;
    private Pop3MessageInfo[] _messages = [];
    private bool[] _deleted = [];
    private int _deletedCount;
    private long _deletedOctets;
    private long _totalOctets;

    public Pop3Session(Pop3ServerContext context, Stream transport, bool isSecure, IPEndPoint? remote, string sessionId)
    {
        _context = context;
        _remote = remote;
        SessionId = sessionId;
        _connection = new Pop3Connection(transport, isSecure, context.Options.IdleTimeoutBeforeLogin);
        if (context.ApopEnabled)
            ApopTimestamp = NewApopTimestamp(context.Options.HostName);
    }

    public string SessionId { get; }

    public Pop3State State { get; private set; } = Pop3State.Authorization;

    public Pop3ServerContext Context => _context;

    public Pop3ConnectionInfo ConnectionInfo => new(SessionId, _remote, _connection.IsSecure);

    /// <summary>The greeting's APOP timestamp (RFC 1939 section 7), or null when APOP is off.</summary>
    public string? ApopTimestamp { get; }

    /// <summary>The name given with USER, waiting for PASS.</summary>
    public string? PendingUser { get; set; }

    /// <summary>Who logged in; null before.</summary>
    public Pop3Identity? Identity { get; private set; }

    /// <summary>A password may be sent now: over TLS, or from a network allowed to send it in plaintext.</summary>
    public bool IsPasswordAllowed => _connection.IsSecure || _context.IsPlaintextAllowedFrom(_remote);

    /// <summary>STLS can be offered: a certificate is configured and the session is not on TLS yet.</summary>
    public bool IsStlsAvailable => _context.TlsOptions is not null && !_connection.IsSecure;

    /// <summary>Messages in the session's snapshot, deleted ones included (numbers never change).</summary>
    public int MessageCount => _messages.Length;

    /// <summary>Messages not marked deleted and their total RFC 1939 size.</summary>
    public (int Count, long Octets) Remaining => (_messages.Length - _deletedCount, _totalOctets - _deletedOctets);

    /// <summary>Runs the session to its end. Never throws.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var reason = "closed";
        // Cancelled when the server stops or the maildrop is revoked (see IMaildrop.Revoked).
        using var running = _running = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var serverStopping = cancellationToken;
        cancellationToken = running.Token;
        try
        {
            Pop3Log.SessionStarted(_context.Logger, SessionId, _remote, _connection.IsSecure);
            Ok(Pop3ServerContext.Implementation + " POP3 server ready" + (ApopTimestamp is null ? "" : " " + ApopTimestamp));
            var loginDeadline = _context.Options.TimeProvider.GetUtcNow() + _context.Options.LoginTimeout;
            while (!_closing)
            {
                if (State != Pop3State.Transaction && !LimitWaitToLoginDeadline(loginDeadline))
                    break;
                var line = await _connection.ReadLineAsync(MaxCommandOctets, cancellationToken).ConfigureAwait(false);
                switch (line.Status)
                {
                    case Pop3LineStatus.EndOfStream:
                        // RFC 1939 section 6: without QUIT there is no UPDATE state; nothing is deleted.
                        reason = State == Pop3State.Transaction ? "dropped in TRANSACTION, nothing deleted" : "dropped";
                        return;
                    case Pop3LineStatus.TooLong:
                        RejectCommand("line too long (RFC 2449: 255 octets at most)");
                        break;
                    default:
                        await DispatchAsync(line.Text, cancellationToken).ConfigureAwait(false);
                        break;
                }
            }
            await _connection.FlushAsync(cancellationToken).ConfigureAwait(false);
            reason = State == Pop3State.Closed ? "QUIT" : "closed by the server";
        }
        catch (TimeoutException)
        {
            // RFC 1939 section 3: an autologout does not enter UPDATE; the connection is closed without a response.
            reason = "idle timeout";
        }
        catch (OperationCanceledException) when (serverStopping.IsCancellationRequested)
        {
            reason = "server stopping";
            await FarewellAsync("-ERR [SYS/TEMP] server shutting down").ConfigureAwait(false);
        }
        catch (Exception) when (_maildrop?.Revoked.IsCancellationRequested == true)
        {
            reason = "taken over by a newer login, nothing deleted";
            Pop3Log.TakenOver(_context.Logger, SessionId, Identity?.Name ?? "");
            await FarewellAsync("-ERR [IN-USE] a newer login of this client took the session over; nothing was deleted").ConfigureAwait(false);
        }
        catch (Pop3TransferAbortedException)
        {
            reason = "message failed mid-transfer";
        }
        catch (AuthenticationException ex)
        {
            reason = "STLS handshake failed";
            Pop3Log.HandshakeFailed(_context.Logger, ex, _remote);
        }
        catch (Exception ex) when (IsConnectionFailure(ex))
        {
            reason = "connection lost: " + ex.GetType().Name;
        }
        catch (Exception ex)
        {
            reason = "internal error";
            Pop3Log.SessionFailed(_context.Logger, ex, SessionId);
        }
        finally
        {
            Pop3Log.SessionEnded(_context.Logger, SessionId, reason);
        }
    }

    /// <summary>
    /// Before login, the wait for the next command ends at the login deadline too: a client that keeps a session
    /// busy with CAPA or failed logins without ever logging in does not hold its place for ever. Returns false (after
    /// queueing a farewell) once the deadline has passed.
    /// </summary>
    private bool LimitWaitToLoginDeadline(DateTimeOffset deadline)
    {
        var left = deadline - _context.Options.TimeProvider.GetUtcNow();
        if (left <= TimeSpan.Zero)
        {
            Pop3Log.LoginTimedOut(_context.Logger, SessionId, _remote, _context.Options.LoginTimeout);
            Err("[SYS/TEMP] no login within " + Describe(_context.Options.LoginTimeout) + "; closing the connection");
            _closing = true;
            return false;
        }
        _connection.IdleTimeout = left < _context.Options.IdleTimeoutBeforeLogin ? left : _context.Options.IdleTimeoutBeforeLogin;
        return true;
    }

    private async ValueTask DispatchAsync(string line, CancellationToken cancellationToken)
    {
        var space = line.IndexOf(' ');
        var keyword = space < 0 ? line : line[..space];
        var arguments = space < 0 ? string.Empty : line[(space + 1)..];
        if (!Pop3StateTable.TryGetVerb(keyword, out var verb))
        {
            // Never echo what the client sent: replies carry only the server's own text.
            RejectCommand("unknown command");
            return;
        }
        Pop3Log.Command(_context.Logger, SessionId, verb.Name, State.ToString());
        if ((verb.ValidIn & State) == 0)
        {
            RejectCommand(verb.Rejection(State));
            return;
        }
        if (Unmet(verb.Requires) is { } refusal)
        {
            RejectCommand(refusal);
            return;
        }

        var succeeded = await verb.Handler.ExecuteAsync(this, arguments, cancellationToken).ConfigureAwait(false);
        if (_closing)
            return;
        var next = succeeded ? verb.OnSuccess : verb.OnFailure;
        if (next != Pop3State.Unchanged)
            State = next;
        if (State == Pop3State.Closed)
            _closing = true;
        if (State != Pop3State.AwaitingPassword)
            PendingUser = null;
        _connection.IdleTimeout = State == Pop3State.Transaction
            ? _context.Options.IdleTimeoutAfterLogin
            : _context.Options.IdleTimeoutBeforeLogin;
    }

    /// <summary>
    /// Refuses a command the table does not let run. After USER, anything but PASS (or CAPA) forgets the name:
    /// PASS is valid only immediately after a successful USER (RFC 1939 section 7).
    /// </summary>
    private void RejectCommand(string text)
    {
        if (State == Pop3State.AwaitingPassword)
        {
            State = Pop3State.Authorization;
            PendingUser = null;
        }
        Reject(text);
    }

    private string? Unmet(Pop3Requirement requirement) => requirement switch
    {
        Pop3Requirement.PasswordAllowed when !IsPasswordAllowed => IsStlsAvailable
            ? "[AUTH] plaintext authentication is disallowed on non-secure connections; use STLS first"
            : "[AUTH] plaintext authentication is disallowed on non-secure connections",
        Pop3Requirement.Apop when !_context.ApopEnabled => "APOP is not available",
        Pop3Requirement.Stls when _connection.IsSecure => "already using TLS",
        Pop3Requirement.Stls when _context.TlsOptions is null => "STLS is not available",
        _ => null,
    };

    // ---- replies -------------------------------------------------------------------------------------------

    /// <summary>Queues "+OK text".</summary>
    public void Ok(string text) => _connection.WriteLine(text.Length == 0 ? "+OK" : "+OK " + text);

    /// <summary>Queues "-ERR text": a refusal that is not the client's fault or not a protocol error.</summary>
    public void Err(string text) => _connection.WriteLine("-ERR " + text);

    /// <summary>
    /// Queues "-ERR text" for a bad command and counts it; at <see cref="Pop3ServerOptions.MaxBadCommands"/> the
    /// session answers that it is closing instead, and ends.
    /// </summary>
    public void Reject(string text)
    {
        _badCommands++;
        if (_badCommands < _context.Options.MaxBadCommands)
        {
            Err(text);
            return;
        }
        Pop3Log.TooManyBadCommands(_context.Logger, SessionId, _remote, _badCommands);
        Err("too many bad commands; closing the connection");
        _closing = true;
    }

    /// <summary>Queues a SASL challenge: "+ " and base64 (RFC 5034 section 4).</summary>
    public void Challenge(string base64) => _connection.WriteLine("+ " + base64);

    /// <summary>Queues one line of a multi-line reply, byte-stuffed (RFC 1939 section 3).</summary>
    public void Line(string text) => _connection.WriteLine(text.StartsWith('.') ? "." + text : text);

    /// <summary>Queues the terminating line of a multi-line reply.</summary>
    public void EndOfLines() => _connection.WriteLine(".");

    /// <summary>Sends queued replies once they are large (long LIST/UIDL replies stay bounded in memory).</summary>
    public ValueTask FlushIfLargeAsync(CancellationToken cancellationToken) =>
        _connection.UnflushedBytes >= FlushThreshold ? _connection.FlushAsync(cancellationToken) : ValueTask.CompletedTask;

    /// <summary>Reads a SASL response line (RFC 5034 section 4), flushing the pending challenge first.</summary>
    public ValueTask<Pop3Line> ReadSaslResponseAsync(CancellationToken cancellationToken) =>
        _connection.ReadLineAsync(MaxSaslResponseOctets, cancellationToken);

    /// <summary>Ends the session after the queued replies are sent.</summary>
    public void Close() => _closing = true;

    // ---- STLS ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Answers +OK, drops everything the client pipelined behind STLS, and runs the handshake (RFC 2595 section 4).
    /// A failed handshake ends the session.
    /// </summary>
    public async ValueTask StartTlsAsync(CancellationToken cancellationToken)
    {
        Ok("begin TLS negotiation");
        await _connection.UpgradeToTlsAsync(_context.TlsOptions!, cancellationToken).ConfigureAwait(false);
    }

    // ---- login ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Runs an authentication and, when it succeeds, opens the maildrop and enters TRANSACTION. Answers every
    /// outcome: a failure with [AUTH] after a delay that grows with the recent failures from the client's address
    /// (counted as a bad command; see <see cref="LoginThrottle"/>), an address locked out after too many
    /// failures with [SYS/TEMP] before any credential is checked (and the session ends), the maildrop in use with
    /// [IN-USE], anything unavailable with [SYS/TEMP] (RFC 3206).
    /// </summary>
    public async ValueTask<bool> LogInAsync(
        string userName, string mechanism, Func<CancellationToken, ValueTask<Pop3AuthResult>> authenticate, CancellationToken cancellationToken)
    {
        // Admitted before any credential is checked: a guess in flight counts toward the address's limit.
        using var attempt = await _context.LoginPenalties
            .EnterAsync(_remote?.Address, userName.ToLowerInvariant(), cancellationToken).ConfigureAwait(false);
        if (attempt.Refusal is { } refusal)
        {
            // Not even a correct password is accepted: otherwise the lockout would only slow the guessing down.
            Pop3Log.LoginLockedOut(_context.Logger, SessionId, _remote, userName, refusal.Left);
            Err($"[SYS/TEMP] too many failed logins from your address; try again in {Describe(refusal.Left)}");
            Close();
            return false;
        }

        Pop3AuthResult result;
        try
        {
            result = await authenticate(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.AuthenticationUnavailable(_context.Logger, ex, SessionId, userName, ex.GetType().Name);
            Err("[SYS/TEMP] authentication is temporarily unavailable; try again later");
            return false;
        }

        switch (result.Status)
        {
            case Pop3AuthStatus.Succeeded:
                // Clears this user's failures at this address only, never the address's record of other users.
                attempt.Succeeded();
                break;
            case Pop3AuthStatus.TemporaryFailure:
                Pop3Log.AuthenticationUnavailable(_context.Logger, null, SessionId, userName, result.Reason);
                Err("[SYS/TEMP] authentication is temporarily unavailable; try again later");
                return false;
            default:
                var penalty = attempt.Failed();
                Pop3Log.LoginFailed(_context.Logger, SessionId, _remote, userName, mechanism, penalty.RecentFailures, penalty.Delay);
                if (penalty.Lockout > TimeSpan.Zero)
                    Pop3Log.AddressLockedOut(_context.Logger, _remote, penalty.RecentFailures, penalty.Lockout);
                if (penalty.Delay > TimeSpan.Zero)
                {
                    // Replies queued for earlier pipelined commands go out before the delay.
                    await _connection.FlushAsync(cancellationToken).ConfigureAwait(false);
                    await Task.Delay(penalty.Delay, _context.Options.TimeProvider, cancellationToken).ConfigureAwait(false);
                }
                if (penalty.Lockout > TimeSpan.Zero)
                {
                    Err($"[AUTH] invalid user name or password; too many failed logins from your address, try again in {Describe(penalty.Lockout)}");
                    Close();
                    return false;
                }
                Reject("[AUTH] invalid user name or password");
                return false;
        }

        var identity = result.Identity!;
        Pop3MaildropResult opened;
        try
        {
            opened = await _context.Maildrops.OpenAsync(identity, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.MaildropUnavailable(_context.Logger, ex, SessionId, identity.Name, ex.GetType().Name);
            Err("[SYS/TEMP] the maildrop is temporarily unavailable; try again later");
            return false;
        }
        switch (opened.Status)
        {
            case Pop3MaildropStatus.Opened:
                break;
            case Pop3MaildropStatus.InUse:
                Pop3Log.MaildropInUse(_context.Logger, SessionId, identity.Name);
                Err("[IN-USE] the maildrop is in use by another session");
                return false;
            case Pop3MaildropStatus.PermanentlyUnavailable:
                // RFC 3206 section 4: a problem that is unlikely to go away without someone fixing it.
                Pop3Log.MaildropUnavailable(_context.Logger, null, SessionId, identity.Name, opened.Reason);
                Err("[SYS/PERM] the maildrop cannot be opened; retrying will not help, ask the administrator");
                return false;
            default:
                Pop3Log.MaildropUnavailable(_context.Logger, null, SessionId, identity.Name, opened.Reason);
                Err("[SYS/TEMP] the maildrop is temporarily unavailable; try again later");
                return false;
        }

        _maildrop = opened.Maildrop!;
        Identity = identity;
        // Cancelling on a pool thread: the revoker (another session's login) does not run this session's continuations.
        _revocation = _maildrop.Revoked.Register(static running => _ = ((CancellationTokenSource)running!).CancelAsync(), _running);
        try
        {
            // RFC 1939 section 4: message numbers are fixed for the session: take the snapshot once.
            _messages = [.. _maildrop.Messages];
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.MaildropUnavailable(_context.Logger, ex, SessionId, identity.Name, ex.GetType().Name);
            await ReleaseMaildropAsync().ConfigureAwait(false);
            Identity = null;
            Err("[SYS/TEMP] the maildrop is temporarily unavailable; try again later");
            return false;
        }
        _deleted = new bool[_messages.Length];
        _totalOctets = 0;
        foreach (var message in _messages)
            _totalOctets += message.Pop3Size;
        Pop3Log.LoggedIn(_context.Logger, SessionId, identity.Name, mechanism, _messages.Length);
        Ok($"logged in; maildrop has {_messages.Length} messages ({_totalOctets} octets)");
        return true;
    }

    // ---- messages ------------------------------------------------------------------------------------------

    public Pop3MessageInfo Message(int index) => _messages[index];

    public bool IsDeleted(int index) => _deleted[index];

    /// <summary>
    /// Parses a message-number argument and checks that the message exists and is not marked deleted
    /// (RFC 1939 section 5); on failure writes the refusal and returns false.
    /// </summary>
    public bool TryResolveMessage(string argument, out int index)
    {
        index = -1;
        if (!TryParseNumber(argument, out var number))
        {
            Reject("syntax: a message number is required");
            return false;
        }
        if (number < 1 || number > _messages.Length)
        {
            Err($"no such message (the maildrop has {_messages.Length} messages, numbered from 1)");
            return false;
        }
        if (_deleted[number - 1])
        {
            Err($"message {number} already deleted");
            return false;
        }
        index = (int)number - 1;
        return true;
    }

    /// <summary>Parses a non-negative decimal number (digits only).</summary>
    public static bool TryParseNumber(string text, out long number)
    {
        number = 0;
        if (text.Length is 0 or > 18)
            return false;
        foreach (var c in text)
        {
            if (c is < '0' or > '9')
                return false;
            number = (number * 10) + (c - '0');
        }
        return true;
    }

    /// <summary>Marks a message deleted (RFC 1939 section 5: DELE only marks; UPDATE removes).</summary>
    public void MarkDeleted(int index)
    {
        _deleted[index] = true;
        _deletedCount++;
        _deletedOctets += _messages[index].Pop3Size;
    }

    /// <summary>Unmarks every message (RSET).</summary>
    public void ResetDeletions()
    {
        Array.Clear(_deleted);
        _deletedCount = 0;
        _deletedOctets = 0;
    }

    /// <summary>
    /// Sends message <paramref name="index"/> as a multi-line reply through <paramref name="encoder"/>, preceded by
    /// <paramref name="okLine"/>. Returns false after answering -ERR [SYS/TEMP] when the message cannot be read at
    /// all; throws <see cref="Pop3TransferAbortedException"/> (the session ends) when it fails mid-transfer.
    /// </summary>
    public async ValueTask<bool> SendMessageAsync(int index, string okLine, Pop3DataEncoder encoder, CancellationToken cancellationToken)
    {
        var maildrop = _maildrop!;
        var info = _messages[index];
        Pop3TransferResult result;
        try
        {
            result = await Pop3MessageTransfer.SendAsync(
                _connection, token => maildrop.OpenAsync(index, token), "+OK " + okLine, encoder,
                _context.Options.TransferChunkSize, cancellationToken).ConfigureAwait(false);
        }
        catch (Pop3TransferAbortedException ex)
        {
            Pop3Log.TransferAborted(_context.Logger, ex.InnerException ?? ex, SessionId, index + 1, info.Uidl);
            throw;
        }
        if (result.Status == Pop3TransferStatus.Unavailable)
        {
            Pop3Log.MessageUnavailable(_context.Logger, result.Error!, SessionId, index + 1, info.Uidl);
            Err($"[SYS/TEMP] message {index + 1} cannot be read right now; the other messages are not affected, try it again later");
            return false;
        }
        return true;
    }

    /// <summary>Reports a RETR that sent a different number of octets than the size announced by STAT and LIST.</summary>
    public void CheckSentSize(int index, long sent)
    {
        var info = _messages[index];
        if (sent != info.Pop3Size)
            Pop3Log.SizeMismatch(_context.Logger, SessionId, index + 1, info.Uidl, sent, info.Pop3Size);
    }

    // ---- UPDATE --------------------------------------------------------------------------------------------

    /// <summary>
    /// QUIT from TRANSACTION: enters UPDATE, asks the maildrop to remove the marked messages and answers
    /// (RFC 1939 section 6). The session ends either way.
    /// </summary>
    public async ValueTask UpdateAsync(CancellationToken cancellationToken)
    {
        State = Pop3State.Update;
        var marked = new HashSet<int>();
        for (var i = 0; i < _deleted.Length; i++)
        {
            if (_deleted[i])
                marked.Add(i);
        }
        try
        {
            await _maildrop!.CommitDeletesAsync(marked, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.CommitFailed(_context.Logger, ex, SessionId, marked.Count);
            Err("[SYS/TEMP] some deleted messages not removed; they will be listed again at the next login");
            return;
        }
        if (marked.Count > 0)
            Pop3Log.Committed(_context.Logger, SessionId, marked.Count);
        var (left, _) = Remaining;
        Ok($"{Pop3ServerContext.Implementation} signing off ({left} messages left)");
    }

    // ---- the end -------------------------------------------------------------------------------------------

    /// <summary>A last line before the connection is closed, only between commands: in the middle of a reply it would corrupt it.</summary>
    private async ValueTask FarewellAsync(string line)
    {
        if (!_connection.WaitingForInput || _connection.OutputFaulted)
            return;
        try
        {
            _connection.WriteLine(line);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await _connection.FlushAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Pop3Log.FarewellFailed(_context.Logger, ex, SessionId);
        }
    }

    private async ValueTask ReleaseMaildropAsync()
    {
        var maildrop = _maildrop;
        _maildrop = null;
        if (maildrop is null)
            return;
        await _revocation.DisposeAsync().ConfigureAwait(false);
        try
        {
            await maildrop.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Pop3Log.MaildropReleaseFailed(_context.Logger, ex, SessionId);
        }
    }

    /// <summary>A wait as a person reads it: whole minutes (rounded up) from one minute on, else seconds.</summary>
    private static string Describe(TimeSpan wait) => LoginRefusal.Describe(wait);

    private static bool IsConnectionFailure(Exception ex) =>
        ex is IOException or SocketException or ObjectDisposedException or AuthenticationException or OperationCanceledException;

    private static string NewApopTimestamp(string hostName)
    {
        // RFC 1939 section 7: "<process-ID.clock@hostname>", different for every greeting; a random part makes it
        // unpredictable, so a captured digest cannot be replayed.
        var random = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        return $"<{Environment.ProcessId}.{random}.{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}@{hostName}>";
    }

    public async ValueTask DisposeAsync()
    {
        await ReleaseMaildropAsync().ConfigureAwait(false);
        try
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Closing a connection that already failed may fail again; the session is over either way.
            Pop3Log.FarewellFailed(_context.Logger, ex, SessionId);
        }
    }
}
