using System.Globalization;
using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>LIST [msg] (RFC 1939 section 5): message numbers and sizes, skipping marked messages. Opens no message.</summary>
internal sealed class ListCommand : IPop3Command
{
    public const string Command = "LIST";

    public ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        var (count, octets) = session.Remaining;
        return ScanListing.WriteAsync(session, arguments, string.Create(CultureInfo.InvariantCulture, $"{count} messages ({octets} octets)"), uidl: false, cancellationToken);
    }
}
