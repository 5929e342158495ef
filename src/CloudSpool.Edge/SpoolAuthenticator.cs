using CloudSpool.Core.Edge;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// Checks POP3 logins against the user store. A login <c>alice+laptop</c> authenticates as user <c>alice</c>
/// (same password) and becomes the client identity <c>alice+laptop</c> with its own view of the mailbox.
/// </summary>
/// <remarks>
/// Every login reads its user from storage the same way (one point read), known or not, and an unknown user's password is
/// checked against a decoy hash by the same hasher, so a name that exists answers no faster or slower than one that does
/// not; a changed password or a removed user takes effect at the next login. Users last read (and the background sync's
/// listing) are kept in memory, so a running edge keeps letting people in while storage is unreachable.
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
            // Every well-formed name is looked up the same way, one storage read, whether it exists or not: a name the
            // background listing already holds must not answer faster than one it does not (which would tell which
            // users exist). The read also lets a user added since the listing log in at once.
            user = await mirror.Health.CallAsync(ct => users.GetAsync(userName, ct), cancellationToken).ConfigureAwait(false);
            // Only users that exist are kept: names guessed by clients must not fill the memory.
            if (user is null)
                _known.TryRemove(userName, out _);
            else
                _known[userName] = user;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && LastKnown(userName, out var known))
        {
            // Storage down: the user as last read or listed (a name in neither, once the users were listed, is unknown).
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

    /// <summary>The user as last read, else as last listed; false when neither can tell (the users were never listed).</summary>
    private bool LastKnown(string userName, out Pop3User? user)
    {
        if (_known.TryGetValue(userName, out user))
            return true;
        return mirror.TryGetLastListedUser(userName, out user);
    }

    /// <summary>True when this password verified against this very stored hash before (compared in constant time).</summary>
    private bool VerifyRemembered(Pop3User user, string password) =>
        _verified.TryGetValue(user.Name, out var remembered)
        && string.Equals(remembered.Hash, user.PasswordHash, StringComparison.Ordinal)
        && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(remembered.Mac, Mac(password));

    private byte[] Mac(string password) =>
        System.Security.Cryptography.HMACSHA256.HashData(_macKey, System.Text.Encoding.UTF8.GetBytes(password));
}
