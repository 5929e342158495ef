using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>CAPA (RFC 2449 section 5): the capabilities available in the current state.</summary>
internal sealed class CapaCommand : IPop3Command
{
    public const string Command = "CAPA";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        var options = session.Context.Options;
        session.Ok("capability list follows");
        session.Line("TOP");
        session.Line("UIDL");
        session.Line("RESP-CODES");
        // RFC 3206: every authentication failure carries [AUTH] or [SYS/...].
        session.Line("AUTH-RESP-CODE");
        session.Line("PIPELINING");
        session.Line(options.ExpireDays is { } days ? "EXPIRE " + days : "EXPIRE NEVER");
        session.Line("LOGIN-DELAY 0");
        // RFC 2595 section 2.3: where a password may not be sent in the clear, do not offer the ways to send one;
        // RFC 2449 section 5 keeps the AUTHORIZATION capabilities listed in TRANSACTION too.
        if (session.IsPasswordAllowed)
        {
            session.Line("USER");
            session.Line("SASL " + AuthCommand.Plain);
        }
        if (session.State != Pop3State.Transaction && session.IsStlsAvailable)
            session.Line("STLS");
        session.Line("IMPLEMENTATION " + Pop3ServerContext.Implementation);
        session.EndOfLines();
        return ValueTask.FromResult(true);
    }
}
