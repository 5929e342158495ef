using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>UIDL [msg] (RFC 1939 section 7): message numbers and unique ids, skipping marked messages. Opens no message.</summary>
internal sealed class UidlCommand : IPop3Command
{
    public const string Command = "UIDL";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken) =>
        ScanListing.WriteAsync(session, arguments, "unique-id listing follows", uidl: true, cancellationToken);
}
