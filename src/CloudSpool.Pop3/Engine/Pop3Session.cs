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
internal sealed partial class Pop3Session : IAsyncDisposable
{
    /// <summary>RFC 2449 section 4: a command line is at most 255 octets, CRLF included.</summary>
    public const int MaxCommandOctets = 255;

    /// <summary>The most pipelined commands looked at to tell the maildrop which messages are asked for next.</summary>
    public const int MaxPeekedCommands = 64;

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
    private IReadOnlyList<Pop3MessageInfo> _messages = [];
    private int _messageCount;
    // Allocated at the first DELE: most sessions mark nothing, and a maildrop of 100,000 messages would cost 100 KB each.
    private bool[]? _deleted;
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
    public int MessageCount => _messageCount;

    /// <summary>Messages not marked deleted and their total RFC 1939 size.</summary>
    public (int Count, long Octets) Remaining => (_messageCount - _deletedCount, _totalOctets - _deletedOctets);

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

    /// <summary>Queues a scan line of UIDL: the message number and its unique id (a scan line starts with a digit: no byte-stuffing).</summary>
    public void ScanLine(int number, string uidl) => _connection.WriteScanLine(number, uidl);

    /// <summary>Queues a scan line of LIST: the message number and its size in octets.</summary>
    public void ScanLine(int number, long octets) => _connection.WriteScanLine(number, octets);

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
