using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>STAT (RFC 1939 section 5): "+OK count octets" of the messages not marked deleted. Opens no message.</summary>
internal sealed class StatCommand : IPop3Command
{
    public const string Command = "STAT";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            session.Reject("syntax: STAT takes no argument");
            return ValueTask.FromResult(false);
        }
        var (count, octets) = session.Remaining;
        session.Ok($"{count} {octets}");
        return ValueTask.FromResult(true);
    }
}
