using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>UIDL [msg] (RFC 1939 section 7): message numbers and unique ids, skipping marked messages. Opens no message.</summary>
internal sealed class UidlCommand : IPop3Command
{
    public const string Command = "UIDL";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            if (!session.TryResolveMessage(arguments, out var index))
                return false;
            session.Ok($"{index + 1} {session.Message(index).Uidl}");
            return true;
        }
        session.Ok("unique-id listing follows");
        for (var i = 0; i < session.MessageCount; i++)
        {
            if (session.IsDeleted(i))
                continue;
            session.Line($"{i + 1} {session.Message(i).Uidl}");
            await session.FlushIfLargeAsync(cancellationToken).ConfigureAwait(false);
        }
        session.EndOfLines();
        return true;
    }
}
