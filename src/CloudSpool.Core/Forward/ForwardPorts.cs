using CloudSpool.Core.Spool;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>
/// The away switch. Switching on records a watermark, the mailbox's last message key at that moment: everything at or
/// before it is the backlog and is never forwarded. <see cref="Until"/> switches it off by itself.
/// </summary>
public sealed record ForwardSwitchState
{
    public bool On { get; init; }

    /// <summary>When set, forwarding is off from this instant on.</summary>
    public DateTimeOffset? Until { get; init; }

    /// <summary>The last message key when switched on (null: the mailbox was empty, nothing is backlog).</summary>
    public string? Watermark { get; init; }

    public DateTimeOffset ChangedAt { get; init; }

    /// <summary>Why the state changed, in words (e.g. "switched on from the command line").</summary>
    public string? Note { get; init; }

    /// <summary>Whether forwarding is on at <paramref name="now"/>.</summary>
    public bool IsOnAt(DateTimeOffset now) => On && (Until is null || now < Until);

    /// <summary>Whether a message key is part of the backlog at switch-on.</summary>
    public bool IsBacklog(string messageKey) => Watermark is not null && string.CompareOrdinal(messageKey, Watermark) <= 0;
}

/// <summary>Control state of forwarding in storage: the switch, the progress cursor, and the tail of a mailbox.</summary>
public interface IForwardControl
{
    /// <summary>The switch; off when never set.</summary>
    Task<ForwardSwitchState> GetSwitchAsync(CancellationToken cancellationToken);

    Task SetSwitchAsync(ForwardSwitchState state, CancellationToken cancellationToken);

    /// <summary>Every message of the mailbox up to this key is settled for every destination (null: none yet).</summary>
    Task<string?> GetCursorAsync(string mailbox, CancellationToken cancellationToken);

    Task SetCursorAsync(string mailbox, string cursor, CancellationToken cancellationToken);

    /// <summary>The newest message key of the mailbox, found without listing the whole mailbox; null when empty.</summary>
    Task<string?> LastMessageKeyAsync(string mailbox, CancellationToken cancellationToken);

    /// <summary>The newest <paramref name="count"/> messages of the mailbox, oldest first.</summary>
    Task<IReadOnlyList<SpoolMessage>> RecentMessagesAsync(string mailbox, int count, CancellationToken cancellationToken);
}

/// <summary>Where one forward of one message to one destination stands.</summary>
public enum ForwardState
{
    /// <summary>Claimed and being handed to the relay (or the sender died in between: see <see cref="ForwardRunner"/>).</summary>
    Sending,

    /// <summary>The relay accepted it (250).</summary>
    Sent,

    /// <summary>Not forwarded by decision (rule, default, loop guard, nothing to send); final.</summary>
    Skipped,

    /// <summary>A temporary failure (4xx, relay unreachable); tried again after <see cref="ForwardEntry.NextAttemptAt"/>.</summary>
    Retry,

    /// <summary>Refused permanently (5xx) or given up after too many attempts; final.</summary>
    Failed,
}

/// <summary>One row of the forward ledger: message × destination.</summary>
public sealed record ForwardEntry
{
    public required string MessageKey { get; init; }
    public required string Destination { get; init; }
    public required ForwardState State { get; init; }

    /// <summary>What happened and why, in words.</summary>
    public required string Reason { get; init; }

    /// <summary>The Message-ID of the copy, derived from message and destination: the same on every attempt.</summary>
    public string? SmtpMessageId { get; init; }

    public int Attempts { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? NextAttemptAt { get; init; }

    /// <summary>Optimistic-concurrency version (ETag) of the stored row; null for a row not stored yet.</summary>
    public string? Version { get; init; }

    /// <summary>True when nothing more will be done for it.</summary>
    public bool IsFinal => State is ForwardState.Sent or ForwardState.Skipped or ForwardState.Failed;
}

/// <summary>The exactly-once ledger of forwards, one row per message and destination.</summary>
public interface IForwardLedger
{
    /// <summary>Rows of messages after <paramref name="afterKey"/> (null: all) of the mailbox.</summary>
    Task<IReadOnlyList<ForwardEntry>> ListAfterAsync(string mailbox, string? afterKey, CancellationToken cancellationToken);

    /// <summary>Rows of one message (one per destination).</summary>
    Task<IReadOnlyList<ForwardEntry>> ListForMessageAsync(string mailbox, string messageKey, CancellationToken cancellationToken);

    /// <summary>
    /// Writes <paramref name="entry"/> only if the stored row is still at <see cref="ForwardEntry.Version"/> (null: only if
    /// there is no row). Returns the entry with its new version, or null when another writer got there first.
    /// </summary>
    Task<ForwardEntry?> TryWriteAsync(string mailbox, ForwardEntry entry, CancellationToken cancellationToken);
}

/// <summary>How a hand-over to the relay ended.</summary>
public enum SendStatus
{
    Sent,

    /// <summary>4xx, or the relay could not be reached or spoke nonsense: try again later.</summary>
    Temporary,

    /// <summary>5xx: the relay will never take it.</summary>
    Permanent,
}

/// <param name="Status">The outcome.</param>
/// <param name="Detail">The relay's reply or the failure, in words.</param>
/// <param name="ConnectionFailed">True when the relay itself is unusable (unreachable, TLS, login): stop sending this run.</param>
public sealed record SendResult(SendStatus Status, string Detail, bool ConnectionFailed = false);

/// <summary>The SMTP relay (MailKit in CloudSpool.Upstream).</summary>
public interface IForwardTransport
{
    /// <summary>A session that connects on first use and sends messages one by one.</summary>
    IForwardSession CreateSession();
}

/// <summary>One connection to the relay; never throws for SMTP or network failures: they are <see cref="SendResult"/>s.</summary>
public interface IForwardSession : IAsyncDisposable
{
    Task<SendResult> SendAsync(MimeMessage message, MailboxAddress sender, MailboxAddress recipient, CancellationToken cancellationToken);
}
