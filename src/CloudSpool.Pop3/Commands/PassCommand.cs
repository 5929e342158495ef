using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>PASS password (RFC 1939 section 7): completes a USER login.</summary>
internal sealed class PassCommand : IPop3Command
{
    public const string Command = "PASS";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        // RFC 1939 section 7: PASS has exactly one argument, so spaces in it are part of the password.
        if (arguments.Length == 0)
        {
            session.Reject("syntax: PASS password");
            return false;
        }
        var user = session.PendingUser!;
        var credentials = new Pop3Credentials(user, arguments, null, Pop3AuthMechanism.UserPass, session.ConnectionInfo);
        return await session.LogInAsync(
            user, "USER", token => session.Context.Authenticator.AuthenticateAsync(credentials, token), cancellationToken)
            .ConfigureAwait(false);
    }
}
