using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>
/// QUIT (RFC 1939 sections 4 and 6): in AUTHORIZATION it only closes; in TRANSACTION it enters UPDATE, where the
/// messages marked by DELE are removed, then closes.
/// </summary>
internal sealed class QuitCommand : IPop3Command
{
    public const string Command = "QUIT";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (session.State == Pop3State.Transaction)
        {
            await session.UpdateAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        session.Ok(Pop3ServerContext.Implementation + " signing off");
        return true;
    }
}
