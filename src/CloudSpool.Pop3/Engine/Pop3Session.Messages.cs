using CloudSpool.Pop3.Commands;
using CloudSpool.Pop3.Protocol;

namespace CloudSpool.Pop3.Engine;

/// <summary>The maildrop of a session in TRANSACTION: message numbers, deletion marks, sending a message, and UPDATE.</summary>
internal sealed partial class Pop3Session
{
    // ---- messages ------------------------------------------------------------------------------------------

    public Pop3MessageInfo Message(int index) => _messages[index];

    public bool IsDeleted(int index) => _deleted is { } deleted && deleted[index];

    /// <summary>
    /// Parses a message-number argument and checks that the message exists and is not marked deleted
    /// (RFC 1939 section 5); on failure writes the refusal and returns false.
    /// </summary>
    public bool TryResolveMessage(string argument, out int index)
    {
        index = -1;
        if (!TryParseNumber(argument, out var number))
        {
            Reject("syntax: a message number is required");
            return false;
        }
        if (number < 1 || number > _messageCount)
        {
            Err($"no such message (the maildrop has {_messageCount} messages, numbered from 1)");
            return false;
        }
        if (IsDeleted((int)number - 1))
        {
            Err($"message {number} already deleted");
            return false;
        }
        index = (int)number - 1;
        return true;
    }

    /// <summary>Parses a non-negative decimal number (digits only).</summary>
    public static bool TryParseNumber(string text, out long number)
    {
        number = 0;
        if (text.Length is 0 or > 18)
            return false;
        foreach (var c in text)
        {
            if (c is < '0' or > '9')
                return false;
            number = (number * 10) + (c - '0');
        }
        return true;
    }

    /// <summary>Marks a message deleted (RFC 1939 section 5: DELE only marks; UPDATE removes).</summary>
    public void MarkDeleted(int index)
    {
        (_deleted ??= new bool[_messageCount])[index] = true;
        _deletedCount++;
        _deletedOctets += _messages[index].Pop3Size;
    }

    /// <summary>Unmarks every message (RSET).</summary>
    public void ResetDeletions()
    {
        if (_deleted is not null)
            Array.Clear(_deleted);
        _deletedCount = 0;
        _deletedOctets = 0;
    }

    /// <summary>
    /// Sends message <paramref name="index"/> as a multi-line reply through <paramref name="encoder"/>, preceded by
    /// <paramref name="okLine"/>. Returns false after answering -ERR [SYS/TEMP] when the message cannot be read at
    /// all; throws <see cref="Pop3TransferAbortedException"/> (the session ends) when it fails mid-transfer.
    /// </summary>
    public async ValueTask<bool> SendMessageAsync(int index, string okLine, Pop3DataEncoder encoder, CancellationToken cancellationToken)
    {
        var maildrop = _maildrop!;
        var info = _messages[index];
        var upcoming = UpcomingMessages(index);
        Pop3TransferResult result;
        try
        {
            result = await Pop3MessageTransfer.SendAsync(
                _connection, token => maildrop.OpenAsync(index, upcoming, token), "+OK " + okLine, encoder,
                _context.Options.TransferChunkSize, cancellationToken).ConfigureAwait(false);
        }
        catch (Pop3TransferAbortedException ex)
        {
            Pop3Log.TransferAborted(_context.Logger, ex.InnerException ?? ex, SessionId, index + 1, info.Uidl);
            throw;
        }
        if (result.Status == Pop3TransferStatus.Unavailable)
        {
            Pop3Log.MessageUnavailable(_context.Logger, result.Error!, SessionId, index + 1, info.Uidl);
            Err($"[SYS/TEMP] message {index + 1} cannot be read right now; the other messages are not affected, try it again later");
            return false;
        }
        return true;
    }

    /// <summary>
    /// The messages a pipelining client asked for after message <paramref name="index"/>: the RETR and TOP commands
    /// among its received, not yet run commands (at most <see cref="MaxPeekedCommands"/> of them, up to its QUIT), of
    /// messages that exist and are not marked deleted now, in order, each once.
    /// </summary>
    private IReadOnlyList<int> UpcomingMessages(int index)
    {
        var lines = _connection.PeekLines(MaxPeekedCommands, MaxCommandOctets);
        if (lines.Count == 0)
            return [];
        var upcoming = new List<int>();
        foreach (var line in lines)
        {
            var words = line.Split(' ');
            if (words[0].Equals(QuitCommand.Command, StringComparison.OrdinalIgnoreCase))
                break;
            if (words.Length < 2 || !(words[0].Equals(RetrCommand.Command, StringComparison.OrdinalIgnoreCase) || words[0].Equals(TopCommand.Command, StringComparison.OrdinalIgnoreCase)))
                continue;
            if (TryParseNumber(words[1], out var number) && number >= 1 && number <= _messageCount && !IsDeleted((int)number - 1)
                && number - 1 != index && !upcoming.Contains((int)number - 1))
                upcoming.Add((int)number - 1);
        }
        return upcoming;
    }

    /// <summary>Reports a RETR that sent a different number of octets than the size announced by STAT and LIST.</summary>
    public void CheckSentSize(int index, long sent)
    {
        var info = _messages[index];
        if (sent != info.Pop3Size)
            Pop3Log.SizeMismatch(_context.Logger, SessionId, index + 1, info.Uidl, sent, info.Pop3Size);
    }

    // ---- UPDATE --------------------------------------------------------------------------------------------

    /// <summary>
    /// QUIT from TRANSACTION: enters UPDATE, asks the maildrop to remove the marked messages and answers
    /// (RFC 1939 section 6). The session ends either way.
    /// </summary>
    public async ValueTask UpdateAsync(CancellationToken cancellationToken)
    {
        State = Pop3State.Update;
        var marked = new HashSet<int>();
        for (var i = 0; i < _messageCount; i++)
        {
            if (IsDeleted(i))
                marked.Add(i);
        }
        try
        {
            await _maildrop!.CommitDeletesAsync(marked, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.CommitFailed(_context.Logger, ex, SessionId, marked.Count);
            Err("[SYS/TEMP] some deleted messages not removed; they will be listed again at the next login");
            return;
        }
        if (marked.Count > 0)
            Pop3Log.Committed(_context.Logger, SessionId, marked.Count);
        var (left, _) = Remaining;
        Ok($"{Pop3ServerContext.Implementation} signing off ({left} messages left)");
    }
}
