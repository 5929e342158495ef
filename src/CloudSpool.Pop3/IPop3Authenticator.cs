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
/// A client identity that passed authentication. Adapters may derive from it to carry what their
/// <see cref="IMaildropProvider"/> needs (for example the mailbox the identity reads).
/// </summary>
/// <param name="Name">The identity's name as the server logs it (for example <c>alice+laptop</c>).</param>
public record Pop3Identity(string Name);
