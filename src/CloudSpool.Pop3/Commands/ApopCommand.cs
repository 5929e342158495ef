using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>APOP name digest (RFC 1939 section 7): login with an MD5 digest of the greeting's timestamp and a secret.</summary>
internal sealed class ApopCommand : IPop3Command
{
    public const string Command = "APOP";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        var parts = arguments.Split(' ');
        if (parts.Length != 2 || parts[0].Length == 0 || !IsMd5Hex(parts[1]))
        {
            session.Reject("syntax: APOP name digest");
            return false;
        }
        var (user, digest) = (parts[0], parts[1].ToLowerInvariant());
        var timestamp = session.ApopTimestamp!;
        var connection = session.ConnectionInfo;
        return await session.LogInAsync(
            user, "APOP",
            token => session.Context.Authenticator.AuthenticateApopAsync(user, timestamp, digest, connection, token),
            cancellationToken).ConfigureAwait(false);
    }

    private static bool IsMd5Hex(string text) => text.Length == 32 && text.All(char.IsAsciiHexDigit);
}
