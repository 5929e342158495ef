using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>DELE msg (RFC 1939 section 5): marks the message; only QUIT removes it.</summary>
internal sealed class DeleCommand : IPop3Command
{
    public const string Command = "DELE";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (!session.TryResolveMessage(arguments, out var index))
            return ValueTask.FromResult(false);
        session.MarkDeleted(index);
        session.Ok($"message {index + 1} deleted");
        return ValueTask.FromResult(true);
    }
}
