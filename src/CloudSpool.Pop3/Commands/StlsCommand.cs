using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>STLS (RFC 2595 section 4): upgrade to TLS; the session starts over in AUTHORIZATION.</summary>
internal sealed class StlsCommand : IPop3Command
{
    public const string Command = "STLS";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            session.Reject("syntax: STLS takes no argument");
            return false;
        }
        await session.StartTlsAsync(cancellationToken).ConfigureAwait(false);
        return true;
    }
}
