using CloudSpool.Pop3.Engine;
using CloudSpool.Pop3.Protocol;

namespace CloudSpool.Pop3.Commands;

/// <summary>TOP msg n (RFC 1939 section 7): the header, the blank line and the first n lines of the body.</summary>
internal sealed class TopCommand : IPop3Command
{
    public const string Command = "TOP";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        var parts = arguments.Split(' ');
        if (parts.Length != 2 || !Pop3Session.TryParseNumber(parts[1], out var lines))
        {
            session.Reject("syntax: TOP msg n");
            return false;
        }
        if (!session.TryResolveMessage(parts[0], out var index))
            return false;
        return await session.SendMessageAsync(index, "top of message follows", new Pop3DataEncoder(lines, session.Message(index).BareCrAsCrlf), cancellationToken)
            .ConfigureAwait(false);
    }
}
