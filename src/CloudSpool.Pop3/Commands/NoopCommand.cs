using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>NOOP (RFC 1939 section 5): does nothing; keeps the session from the autologout timer.</summary>
internal sealed class NoopCommand : IPop3Command
{
    public const string Command = "NOOP";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            session.Reject("syntax: NOOP takes no argument");
            return ValueTask.FromResult(false);
        }
        session.Ok(string.Empty);
        return ValueTask.FromResult(true);
    }
}
