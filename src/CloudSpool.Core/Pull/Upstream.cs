using CloudSpool.Core.Accounts;

namespace CloudSpool.Core.Pull;

/// <summary>
/// A message as listed upstream. <see cref="Key"/> is the account-wide identity recorded in the seen
/// ledger: the POP3 UIDL (or a header hash where the server has no UIDL), or for IMAP
/// folder + UIDVALIDITY + UID.
/// </summary>
/// <param name="Key">Identity in the seen ledger, unique within the scope and validity.</param>
/// <param name="Size">Size the server reports (POP3 LIST, IMAP RFC822.SIZE).</param>
/// <param name="Handle">Adapter-specific handle (POP3 message index, IMAP UID).</param>
public sealed record UpstreamMessage(string Key, long Size, object Handle);

/// <summary>
/// The messages of one scope (the POP3 maildrop, or one IMAP folder) and the scope's validity
/// (IMAP UIDVALIDITY; a constant for POP3): keys are only meaningful within one validity.
/// </summary>
public sealed record ScopeListing(string Scope, string Validity, IReadOnlyList<UpstreamMessage> Messages);

/// <summary>Scope names and validities every upstream adapter and the seen-ledger import agree on.</summary>
public static class UpstreamScopes
{
    /// <summary>The validity of a POP3 maildrop's one scope (POP3 has no UIDVALIDITY; its UIDLs are its keys).</summary>
    public const string Pop3Validity = "pop3";

    /// <summary>The seen-ledger key of a POP3 message listed with a UIDL.</summary>
    public static string Pop3Key(string uidl) => Pop3UidlPrefix + uidl;

    /// <summary>How a key made from a POP3 UIDL starts.</summary>
    public const string Pop3UidlPrefix = "u:";

    /// <summary>How a key of a POP3 server without UIDL starts (a hash of the header block and the size).</summary>
    public const string Pop3HeaderPrefix = "h:";
}

/// <summary>What the server says about the mailbox as a whole, where it says it.</summary>
/// <param name="Messages">Messages listed.</param>
/// <param name="Bytes">Their sizes summed, as the server listed them.</param>
/// <param name="QuotaLimitBytes">The storage limit the server reports (IMAP QUOTA, RFC 2087); null when it reports none.</param>
/// <param name="QuotaUsedBytes">The storage in use the server reports against that limit.</param>
public sealed record UpstreamMailboxStatus(int Messages, long Bytes, long? QuotaLimitBytes = null, long? QuotaUsedBytes = null)
{
    /// <summary>
    /// Messages the leave policy wants gone that stay upstream flagged \Deleted: an IMAP server without UIDPLUS (RFC 4315)
    /// offers only a plain EXPUNGE, which would also remove what other clients flagged, so nothing is expunged there.
    /// </summary>
    public int LeftFlaggedDeleted { get; init; }
}

/// <summary>Opens sessions to upstream mailboxes.</summary>
public interface IUpstreamConnector
{
    /// <summary>Connects and authenticates. Throws <see cref="UpstreamException"/> with the kind of failure.</summary>
    Task<IUpstreamSession> ConnectAsync(AccountDefinition account, string password, CancellationToken cancellationToken);
}

/// <summary>An authenticated session with an upstream mailbox.</summary>
public interface IUpstreamSession : IAsyncDisposable
{
    /// <summary>The scopes to pull: one (empty name) for POP3, the configured folders for IMAP.</summary>
    IReadOnlyList<string> Scopes { get; }

    /// <summary>Size of the whole upstream mailbox, once a scope has been opened.</summary>
    UpstreamMailboxStatus? Status { get; }

    /// <summary>Opens a scope and lists its messages in server order (oldest first).</summary>
    Task<ScopeListing> OpenScopeAsync(string scope, CancellationToken cancellationToken);

    /// <summary>
    /// A hint: the messages of the open scope that will be fetched next, in the order <see cref="FetchAsync"/> will be
    /// called for them. An adapter may request them ahead (POP3 PIPELINING); a fetch of anything else still works.
    /// </summary>
    void PlanFetches(IReadOnlyList<UpstreamMessage> messages) { }

    /// <summary>
    /// The keys of the open scope's messages that carry the IMAP \Seen flag (what fetchmail took as already fetched when
    /// `account import` reads its IMAP state). Only IMAP has flags.
    /// </summary>
    Task<IReadOnlySet<string>> SeenFlaggedAsync(CancellationToken cancellationToken) =>
        throw new NotSupportedException("only IMAP folders have \\Seen flags");

    /// <summary>
    /// Copies the message's raw bytes, exactly as the server sends them (POP3 dot-stuffing undone),
    /// to <paramref name="destination"/>. Throws <see cref="UpstreamMessageException"/> when the server
    /// refuses this one message and the session is still usable; any other exception means the session is gone.
    /// </summary>
    Task FetchAsync(UpstreamMessage message, Stream destination, CancellationToken cancellationToken);

    /// <summary>Marks the message for deletion; it is removed only by <see cref="CloseScopeAsync"/> or <see cref="CommitAsync"/>.</summary>
    Task MarkDeletedAsync(UpstreamMessage message, CancellationToken cancellationToken);

    /// <summary>
    /// Ends work on the current scope (IMAP: UID EXPUNGE of what was marked, where the server has UIDPLUS). Returns the
    /// messages of the scope, as given to <see cref="MarkDeletedAsync"/>, whose removal the server has confirmed.
    /// </summary>
    Task<IReadOnlyList<UpstreamMessage>> CloseScopeAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Ends the session cleanly (POP3: QUIT, which applies deletions per RFC 1939 section 6). Returns the messages, as
    /// given to <see cref="MarkDeletedAsync"/>, whose removal the server confirmed with it (POP3: QUIT answered +OK).
    /// </summary>
    Task<IReadOnlyList<UpstreamMessage>> CommitAsync(CancellationToken cancellationToken);
}

/// <summary>Broad kinds of upstream failure, told apart in status and alerts.</summary>
public enum UpstreamErrorKind
{
    Unknown,
    Configuration,
    Dns,
    Connect,
    Tls,
    Authentication,
    Protocol,
    Timeout,
    Storage,
}

/// <summary>The upstream session failed as a whole (cannot connect, log in, or talk to the server).</summary>
public sealed class UpstreamException(UpstreamErrorKind kind, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public UpstreamErrorKind Kind { get; } = kind;
}

/// <summary>The server refused one message (e.g. -ERR on RETR); the session is still usable.</summary>
public sealed class UpstreamMessageException(string message, Exception? inner = null) : Exception(message, inner);
