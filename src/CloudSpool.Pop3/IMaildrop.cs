namespace CloudSpool.Pop3;

/// <summary>
/// One session's view of a maildrop: a snapshot of its messages fixed when the session entered the
/// TRANSACTION state. Message number n on the wire is <c>Messages[n - 1]</c> for the whole session
/// (RFC 1939 section 4); messages that arrive later appear in the next session.
/// </summary>
/// <remarks>
/// The session calls the members one at a time, never concurrently. STAT, LIST and UIDL use only
/// <see cref="Messages"/>: they never open a message.
/// </remarks>
public interface IMaildrop : IAsyncDisposable
{
    /// <summary>The snapshot. It must not change during the session: the session reads it where it is, without a copy.</summary>
    IReadOnlyList<Pop3MessageInfo> Messages { get; }

    /// <summary>
    /// Opens the stored bytes of message <c>Messages[index]</c> (zero-based) for reading. The server turns bare
    /// CR and LF into CRLF and dot-stuffs on the way out; the stream must yield exactly the stored bytes.
    /// </summary>
    /// <remarks>
    /// Throwing here, or from the first read, fails only this RETR/TOP (-ERR [SYS/TEMP]); a read that fails
    /// after the first chunk was sent leaves the server no honest way to finish the reply, so it closes the
    /// connection (the client sees a truncated response, never a wrong message).
    /// </remarks>
    ValueTask<Stream> OpenAsync(int index, CancellationToken cancellationToken);

    /// <summary>
    /// Opens message <paramref name="index"/> as <see cref="OpenAsync(int, CancellationToken)"/> does, told which
    /// messages the client already asked for after it: the zero-based indexes of the RETR and TOP commands it
    /// pipelined (RFC 2449 section 6.6) that are received and not yet run, in order, without duplicates (empty when
    /// none are). A maildrop may start reading those ahead; the hint promises nothing (the client may still disconnect).
    /// </summary>
    ValueTask<Stream> OpenAsync(int index, IReadOnlyList<int> upcoming, CancellationToken cancellationToken) =>
        OpenAsync(index, cancellationToken);

    /// <summary>
    /// Applies the deletions of the session: called exactly once, in the UPDATE state after the client sent QUIT
    /// in the TRANSACTION state (RFC 1939 section 6), with the zero-based indexes of the messages marked by DELE
    /// and not unmarked by RSET (possibly none). Never called for a session that ends any other way.
    /// Throwing makes QUIT answer -ERR [SYS/TEMP] (RFC 1939 section 6: "some deleted messages not removed").
    /// </summary>
    ValueTask CommitDeletesAsync(IReadOnlySet<int> indexes, CancellationToken cancellationToken);

    /// <summary>
    /// Cancelled when the maildrop is taken from the session (a newer login of the same identity took it over): the
    /// session ends at once without applying its deletions, answering -ERR [IN-USE] when it was waiting for a
    /// command and closing the connection otherwise.
    /// </summary>
    CancellationToken Revoked => CancellationToken.None;
}

/// <summary>What the server needs to know about a message without opening it.</summary>
/// <param name="Uidl">Unique-id listing (RFC 1939 section 7): 1 to 70 characters in 0x21-0x7E, stable across sessions.</param>
/// <param name="Pop3Size">
/// Octets of the message on the wire, before dot-stuffing and without the terminating line (RFC 1939 section 11): what
/// RETR writes for it. The stored bytes count as they are, and a bare LF (not after a CR) as CRLF; a message that does
/// not end in a LF gets a CRLF on the wire that is not counted (as Dovecot 2.3 does).
/// </param>
/// <param name="BareCrAsCrlf">
/// The size was recorded under the old rule, which counted every bare CR (not followed by LF) as CRLF: the server then
/// sends every bare CR as CRLF too (and takes it as a line end for TOP), so RETR still sends what LIST announced.
/// </param>
public readonly record struct Pop3MessageInfo(string Uidl, long Pop3Size, bool BareCrAsCrlf = false);
