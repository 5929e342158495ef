using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>LIST [msg] (RFC 1939 section 5): message numbers and sizes, skipping marked messages. Opens no message.</summary>
internal sealed class ListCommand : IPop3Command
{
    public const string Command = "LIST";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            if (!session.TryResolveMessage(arguments, out var index))
                return false;
            session.Ok($"{index + 1} {session.Message(index).Pop3Size}");
            return true;
        }
        var (count, octets) = session.Remaining;
        session.Ok($"{count} messages ({octets} octets)");
        for (var i = 0; i < session.MessageCount; i++)
        {
            if (session.IsDeleted(i))
                continue;
            session.Line($"{i + 1} {session.Message(i).Pop3Size}");
            await session.FlushIfLargeAsync(cancellationToken).ConfigureAwait(false);
        }
        session.EndOfLines();
        return true;
    }
}
