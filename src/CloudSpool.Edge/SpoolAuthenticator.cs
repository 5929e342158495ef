using CloudSpool.Core.Edge;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// Checks POP3 logins against the user store. A login <c>alice+laptop</c> authenticates as user <c>alice</c>
/// (same password) and becomes the client identity <c>alice+laptop</c> with its own view of the mailbox.
/// </summary>
/// <remarks>
/// Users come from the background sync's listing when it is recent (see <see cref="SpoolMirror.TryGetListedUser"/>), so a
/// changed password or a removed user takes effect within two sync intervals; otherwise (and for a name not listed, such
/// as a user added since) from storage. Users last read are kept in memory, so a running edge keeps letting people in while storage is unreachable.
/// A password that verified against a user's stored hash is remembered in memory as an HMAC under a key of this
/// process (never the password, never persisted), so the next login of a mail client that polls every few minutes
/// skips the deliberately slow hash (as Dovecot's auth cache does). Only successes are remembered: a wrong password
/// always pays the full verification, and a changed password (a new stored hash) is verified afresh.
/// </remarks>
public sealed class SpoolAuthenticator(IPop3UserStore users, SpoolMirror mirror, ILogger<SpoolAuthenticator> logger) : IPop3Authenticator
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Pop3User?> _known = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (string Hash, byte[] Mac)> _verified = new(StringComparer.Ordinal);
    private readonly byte[] _macKey = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);

    public async ValueTask<Pop3AuthResult> AuthenticateAsync(Pop3Credentials credentials, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        var remote = credentials.Connection.RemoteEndPoint;
        if (credentials.AuthorizationIdentity is { } authzid && !string.Equals(authzid, credentials.UserName, StringComparison.OrdinalIgnoreCase))
        {
            Pop3Passwords.VerifyDecoy(credentials.Password);
            EdgeLog.LoginRefused(logger, credentials.UserName, remote, "acting as another identity is not allowed");
            return Pop3AuthResult.Failed;
        }
        if (!Pop3Names.TryParseLogin(credentials.UserName, out var userName, out var client))
        {
            Pop3Passwords.VerifyDecoy(credentials.Password);
            EdgeLog.LoginRefused(logger, credentials.UserName, remote, "not a valid login name");
            return Pop3AuthResult.Failed;
        }

        Pop3User? user;
        try
        {
            // The background sync lists the users every few seconds: a login needs no storage round trip of its own.
            // A name not listed is asked for (a user added since the listing must not wait for the next one).
            if (!mirror.TryGetListedUser(userName, out user) || user is null)
                user = await mirror.Health.CallAsync(ct => users.GetAsync(userName, ct), cancellationToken).ConfigureAwait(false);
            _known[userName] = user;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && _known.TryGetValue(userName, out var known))
        {
            EdgeLog.UsingCachedUser(logger, ex, credentials.UserName);
            user = known;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            EdgeLog.UserStoreFailed(logger, ex, credentials.UserName);
            return Pop3AuthResult.TemporaryFailure("the user store is not reachable: " + ex.Message);
        }

        if (user is null)
        {
            Pop3Passwords.VerifyDecoy(credentials.Password);
            EdgeLog.LoginRefused(logger, credentials.UserName, remote, "no such user");
            return Pop3AuthResult.Failed;
        }
        if (!VerifyRemembered(user, credentials.Password))
        {
            if (!Pop3Passwords.Verify(user.PasswordHash, credentials.Password))
            {
                EdgeLog.LoginRefused(logger, credentials.UserName, remote, "wrong password");
                return Pop3AuthResult.Failed;
            }
            _verified[user.Name] = (user.PasswordHash, Mac(credentials.Password));
        }
        EdgeLog.LoggedIn(logger, client, remote, user.Mailbox);
        return Pop3AuthResult.Success(new SpoolIdentity(client, user.Name, user.Mailbox));
    }

    /// <summary>True when this password verified against this very stored hash before (compared in constant time).</summary>
    private bool VerifyRemembered(Pop3User user, string password) =>
        _verified.TryGetValue(user.Name, out var remembered)
        && string.Equals(remembered.Hash, user.PasswordHash, StringComparison.Ordinal)
        && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(remembered.Mac, Mac(password));

    private byte[] Mac(string password) =>
        System.Security.Cryptography.HMACSHA256.HashData(_macKey, System.Text.Encoding.UTF8.GetBytes(password));
}
