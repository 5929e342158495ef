using CloudSpool.Pop3.Engine;
using CloudSpool.Pop3.Protocol;

namespace CloudSpool.Pop3.Commands;

/// <summary>RETR msg (RFC 1939 section 5): the whole message, bare LFs as CRLF, byte-stuffed.</summary>
internal sealed class RetrCommand : IPop3Command
{
    public const string Command = "RETR";

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (!session.TryResolveMessage(arguments, out var index))
            return false;
        var message = session.Message(index);
        var encoder = new Pop3DataEncoder(message.BareCrAsCrlf);
        if (!await session.SendMessageAsync(index, $"{message.Pop3Size} octets", encoder, cancellationToken).ConfigureAwait(false))
            return false;
        session.CheckSentSize(index, encoder.MessageOctets);
        return true;
    }
}
