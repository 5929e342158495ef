using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>RSET (RFC 1939 section 5): unmarks every message marked by DELE in this session.</summary>
internal sealed class RsetCommand : IPop3Command
{
    public const string Command = "RSET";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            session.Reject("syntax: RSET takes no argument");
            return ValueTask.FromResult(false);
        }
        session.ResetDeletions();
        var (count, octets) = session.Remaining;
        session.Ok($"maildrop has {count} messages ({octets} octets)");
        return ValueTask.FromResult(true);
    }
}
