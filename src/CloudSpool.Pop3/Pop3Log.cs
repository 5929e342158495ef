using System.Net;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Pop3;

/// <summary>
/// Every log message of the POP3 server, structured. Passwords and SASL responses never appear. Event ids are unique
/// in this assembly and numbered in the order the messages were added (1-27; the next new one takes 28).
/// </summary>
internal static partial class Pop3Log
{
    [LoggerMessage(1, LogLevel.Information, "POP3 listening on {EndPoint} (implicit TLS: {ImplicitTls})")]
    public static partial void Listening(ILogger logger, IPEndPoint endPoint, bool implicitTls);

    [LoggerMessage(2, LogLevel.Information, "POP3 listener on {EndPoint} stopped")]
    public static partial void ListenerStopped(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(3, LogLevel.Warning, "POP3 accept on {EndPoint} failed; retrying")]
    public static partial void AcceptFailed(ILogger logger, Exception exception, IPEndPoint endPoint);

    [LoggerMessage(4, LogLevel.Warning, "POP3 connection from {Remote} refused: {Active} sessions already (limit {Limit})")]
    public static partial void TooManySessions(ILogger logger, EndPoint? remote, int active, int limit);

    [LoggerMessage(27, LogLevel.Warning, "POP3 connection from {Remote} refused: {Active} sessions from its address already (limit {Limit})")]
    public static partial void TooManySessionsFromAddress(ILogger logger, EndPoint? remote, int active, int limit);

    [LoggerMessage(5, LogLevel.Debug, "POP3 session {SessionId} from {Remote} started (TLS: {Secure})")]
    public static partial void SessionStarted(ILogger logger, string sessionId, EndPoint? remote, bool secure);

    [LoggerMessage(6, LogLevel.Debug, "POP3 session {SessionId} ended: {Reason}")]
    public static partial void SessionEnded(ILogger logger, string sessionId, string reason);

    [LoggerMessage(7, LogLevel.Information, "POP3 connection from {Remote}: TLS handshake failed")]
    public static partial void HandshakeFailed(ILogger logger, Exception exception, EndPoint? remote);

    [LoggerMessage(8, LogLevel.Error, "POP3 session {SessionId} failed")]
    public static partial void SessionFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(9, LogLevel.Debug, "POP3 session {SessionId} command {Command} in state {State}")]
    public static partial void Command(ILogger logger, string sessionId, string command, string state);

    [LoggerMessage(10, LogLevel.Information, "POP3 session {SessionId}: {User} logged in with {Mechanism} ({Messages} messages)")]
    public static partial void LoggedIn(ILogger logger, string sessionId, string user, string mechanism, int messages);

    [LoggerMessage(11, LogLevel.Warning, "POP3 session {SessionId} from {Remote}: failed login for {User} with {Mechanism} ({Failures} recent failures from this address; answered after {Delay})")]
    public static partial void LoginFailed(ILogger logger, string sessionId, EndPoint? remote, string user, string mechanism, int failures, TimeSpan delay);

    [LoggerMessage(12, LogLevel.Warning, "POP3 session {SessionId}: authentication unavailable for {User}: {Reason}")]
    public static partial void AuthenticationUnavailable(ILogger logger, Exception? exception, string sessionId, string user, string? reason);

    [LoggerMessage(13, LogLevel.Information, "POP3 session {SessionId}: maildrop of {Identity} is in use")]
    public static partial void MaildropInUse(ILogger logger, string sessionId, string identity);

    [LoggerMessage(26, LogLevel.Information, "POP3 session {SessionId}: a newer login of {Identity} took the maildrop over; this session ends without deleting anything")]
    public static partial void TakenOver(ILogger logger, string sessionId, string identity);

    [LoggerMessage(14, LogLevel.Warning, "POP3 session {SessionId}: maildrop of {Identity} unavailable: {Reason}")]
    public static partial void MaildropUnavailable(ILogger logger, Exception? exception, string sessionId, string identity, string? reason);

    [LoggerMessage(15, LogLevel.Warning, "POP3 session {SessionId}: message {Number} ({Uidl}) unavailable")]
    public static partial void MessageUnavailable(ILogger logger, Exception exception, string sessionId, int number, string uidl);

    [LoggerMessage(16, LogLevel.Error, "POP3 session {SessionId}: message {Number} ({Uidl}) failed while being sent; closing the connection")]
    public static partial void TransferAborted(ILogger logger, Exception exception, string sessionId, int number, string uidl);

    [LoggerMessage(17, LogLevel.Warning, "POP3 session {SessionId}: message {Number} ({Uidl}) sent {Sent} octets, its recorded size is {Size}")]
    public static partial void SizeMismatch(ILogger logger, string sessionId, int number, string uidl, long sent, long size);

    [LoggerMessage(18, LogLevel.Error, "POP3 session {SessionId}: deleting {Count} messages at QUIT failed")]
    public static partial void CommitFailed(ILogger logger, Exception exception, string sessionId, int count);

    [LoggerMessage(19, LogLevel.Information, "POP3 session {SessionId}: QUIT deleted {Count} messages")]
    public static partial void Committed(ILogger logger, string sessionId, int count);

    [LoggerMessage(20, LogLevel.Warning, "POP3 session {SessionId}: releasing the maildrop failed")]
    public static partial void MaildropReleaseFailed(ILogger logger, Exception exception, string sessionId);

    [LoggerMessage(21, LogLevel.Information, "POP3 session {SessionId} from {Remote} ended after {Count} bad commands")]
    public static partial void TooManyBadCommands(ILogger logger, string sessionId, EndPoint? remote, int count);

    [LoggerMessage(23, LogLevel.Warning, "POP3 logins from {Remote} refused for {Lockout} after {Failures} failed logins")]
    public static partial void AddressLockedOut(ILogger logger, EndPoint? remote, int failures, TimeSpan lockout);

    [LoggerMessage(24, LogLevel.Information, "POP3 session {SessionId} from {Remote}: login for {User} refused, the address is locked out for {Left} more")]
    public static partial void LoginLockedOut(ILogger logger, string sessionId, EndPoint? remote, string user, TimeSpan left);

    [LoggerMessage(25, LogLevel.Information, "POP3 session {SessionId} from {Remote} ended: no login within {LoginTimeout}")]
    public static partial void LoginTimedOut(ILogger logger, string sessionId, EndPoint? remote, TimeSpan loginTimeout);

    [LoggerMessage(22, LogLevel.Debug, "POP3 session {SessionId}: could not send the closing reply")]
    public static partial void FarewellFailed(ILogger logger, Exception exception, string sessionId);
}
