namespace CloudSpool.Pop3;

/// <summary>
/// Checks POP3 credentials. The server calls it for USER/PASS (RFC 1939 section 7), AUTH PLAIN (RFC 5034,
/// RFC 4616) and, when <see cref="SupportsApop"/> is true, APOP (RFC 1939 section 7).
/// </summary>
/// <remarks>
/// Implementations must be thread-safe: every session calls the same instance. The server delays failed
/// attempts itself (<see cref="Pop3ServerOptions.FailedLoginDelay"/>); an implementation may add its own
/// per-address penalties using <see cref="Pop3ConnectionInfo.RemoteEndPoint"/>. An exception is answered
/// like <see cref="Pop3AuthResult.TemporaryFailure"/>.
/// </remarks>
public interface IPop3Authenticator
{
    /// <summary>
    /// True when <see cref="AuthenticateApopAsync"/> can verify digests. APOP needs the shared secret in a form
    /// from which MD5(timestamp + secret) can be computed, which hashed password storage does not give; so the
    /// default is false, and then the greeting carries no timestamp and APOP is refused.
    /// </summary>
    bool SupportsApop => false;

    /// <summary>Checks a user name and password (USER/PASS or AUTH PLAIN).</summary>
    ValueTask<Pop3AuthResult> AuthenticateAsync(Pop3Credentials credentials, CancellationToken cancellationToken);

    /// <summary>
    /// Checks an APOP digest: <paramref name="digest"/> is the client's lower-case hex MD5 of
    /// <paramref name="timestamp"/> (the greeting's &lt;...&gt; string, brackets included) followed by the
    /// shared secret. <see cref="ApopDigest.Matches"/> does the comparison.
    /// </summary>
    ValueTask<Pop3AuthResult> AuthenticateApopAsync(
        string userName, string timestamp, string digest, Pop3ConnectionInfo connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Pop3AuthResult.Failed);
}

/// <summary>The way a client presented its credentials.</summary>
public enum Pop3AuthMechanism
{
    /// <summary>USER then PASS (RFC 1939 section 7).</summary>
    UserPass,

    /// <summary>AUTH PLAIN (RFC 5034, RFC 4616).</summary>
    Plain,
}

/// <summary>
/// A user name and password as a client sent them. <see cref="ToString"/> never shows the password, so the
/// object is safe to log.
/// </summary>
public sealed class Pop3Credentials
{
    /// <summary>Creates credentials.</summary>
    public Pop3Credentials(
        string userName, string password, string? authorizationIdentity, Pop3AuthMechanism mechanism, Pop3ConnectionInfo connection)
    {
        ArgumentNullException.ThrowIfNull(userName);
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(connection);
        UserName = userName;
        Password = password;
        AuthorizationIdentity = string.IsNullOrEmpty(authorizationIdentity) ? null : authorizationIdentity;
        Mechanism = mechanism;
        Connection = connection;
    }

    /// <summary>The authentication identity (USER argument, or PLAIN authcid).</summary>
    public string UserName { get; }

    /// <summary>The password as sent. Never log it.</summary>
    public string Password { get; }

    /// <summary>
    /// The identity to act as (PLAIN authzid, RFC 4616 section 2) when the client asked for one different
    /// from <see cref="UserName"/>; null otherwise. The authenticator decides whether that is allowed.
    /// </summary>
    public string? AuthorizationIdentity { get; }

    /// <summary>How the credentials were presented.</summary>
    public Pop3AuthMechanism Mechanism { get; }

    /// <summary>The connection they came from.</summary>
    public Pop3ConnectionInfo Connection { get; }

    /// <summary>The mechanism and user name; never the password.</summary>
    public override string ToString() => Mechanism + " " + UserName;
}

/// <summary>
/// A client identity that passed authentication. Adapters may derive from it to carry what their
/// <see cref="IMaildropProvider"/> needs (for example the mailbox the identity reads).
/// </summary>
/// <param name="Name">The identity's name as the server logs it (for example <c>alice+laptop</c>).</param>
public record Pop3Identity(string Name);

/// <summary>What an authentication attempt came to.</summary>
public enum Pop3AuthStatus
{
    /// <summary>The credentials are good: <see cref="Pop3AuthResult.Identity"/> is set.</summary>
    Succeeded,

    /// <summary>Wrong user name, password or digest: answered with -ERR [AUTH] after a delay (RFC 3206).</summary>
    Failed,

    /// <summary>The check could not be made now: answered with -ERR [SYS/TEMP] (RFC 3206).</summary>
    TemporaryFailure,
}

/// <summary>The answer of an <see cref="IPop3Authenticator"/>.</summary>
public sealed class Pop3AuthResult
{
    private Pop3AuthResult(Pop3AuthStatus status, Pop3Identity? identity, string? reason)
    {
        Status = status;
        Identity = identity;
        Reason = reason;
    }

    /// <summary>Wrong credentials.</summary>
    public static Pop3AuthResult Failed { get; } = new(Pop3AuthStatus.Failed, null, null);

    /// <summary>What the attempt came to.</summary>
    public Pop3AuthStatus Status { get; }

    /// <summary>The authenticated identity when <see cref="Status"/> is <see cref="Pop3AuthStatus.Succeeded"/>.</summary>
    public Pop3Identity? Identity { get; }

    /// <summary>Why a temporary failure happened, for the log (never sent to the client).</summary>
    public string? Reason { get; }

    /// <summary>The credentials are good.</summary>
    public static Pop3AuthResult Success(Pop3Identity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return new(Pop3AuthStatus.Succeeded, identity, null);
    }

    /// <summary>The credentials could not be checked now (for example the user store is unreachable).</summary>
    public static Pop3AuthResult TemporaryFailure(string? reason = null) => new(Pop3AuthStatus.TemporaryFailure, null, reason);
}
