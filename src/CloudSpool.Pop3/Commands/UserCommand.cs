using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>USER name (RFC 1939 section 7): the first half of a plaintext login.</summary>
internal sealed class UserCommand : IPop3Command
{
    public const string Command = "USER";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length == 0 || arguments.Contains(' '))
        {
            session.Reject("syntax: USER name");
            return ValueTask.FromResult(false);
        }
        // Always +OK: telling unknown names apart would let a client probe for valid ones (RFC 1939 section 13).
        session.PendingUser = arguments;
        session.Ok("send PASS");
        return ValueTask.FromResult(true);
    }
}
