using System.Globalization;
using CloudSpool.Pop3.Engine;

namespace CloudSpool.Pop3.Commands;

/// <summary>
/// What LIST and UIDL share (RFC 1939 sections 5 and 7): with a message number, that message's scan line in the +OK
/// reply; without, a status in the +OK reply, then the scan line of every message not marked deleted.
/// </summary>
internal static class ScanListing
{
    /// <param name="session">The session whose maildrop is listed.</param>
    /// <param name="arguments">The command's argument: a message number, or empty for every message.</param>
    /// <param name="status">The text of the +OK reply before a whole listing.</param>
    /// <param name="uidl">True for UIDL (a scan line gives the unique id), false for LIST (the size in octets).</param>
    /// <param name="cancellationToken">Stops a long listing between lines.</param>
    public static async ValueTask<bool> WriteAsync(Pop3Session session, string arguments, string status, bool uidl, CancellationToken cancellationToken)
    {
        if (arguments.Length > 0)
        {
            if (!session.TryResolveMessage(arguments, out var index))
                return false;
            var message = session.Message(index);
            session.Ok(uidl ? $"{index + 1} {message.Uidl}" : string.Create(CultureInfo.InvariantCulture, $"{index + 1} {message.Pop3Size}"));
            return true;
        }
        session.Ok(status);
        for (var i = 0; i < session.MessageCount; i++)
        {
            if (session.IsDeleted(i))
                continue;
            var message = session.Message(i);
            if (uidl)
                session.ScanLine(i + 1, message.Uidl);
            else
                session.ScanLine(i + 1, message.Pop3Size);
            await session.FlushIfLargeAsync(cancellationToken).ConfigureAwait(false);
        }
        session.EndOfLines();
        return true;
    }
}
