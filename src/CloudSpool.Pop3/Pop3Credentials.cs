namespace CloudSpool.Pop3;

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
