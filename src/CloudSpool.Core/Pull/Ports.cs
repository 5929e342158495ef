using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Pull;

/// <summary>A message the seen ledger knows, with what was done with it.</summary>
/// <param name="Key">The upstream key (see <see cref="UpstreamMessage.Key"/>).</param>
/// <param name="FirstSeen">When it was first stored (or taken as seen).</param>
/// <param name="Stored">True when it is in the spool; false when it was taken as already seen at first run.</param>
/// <param name="MessageKey">Its key in the spool when stored.</param>
/// <param name="Size">Upstream size, or <see cref="UnknownSize"/>.</param>
public sealed record SeenEntry(string Key, DateTimeOffset FirstSeen, bool Stored, string? MessageKey, long Size)
{
    /// <summary>
    /// The size of an entry imported from another tool's record (fetchmail's .fetchids, mpop's UIDLs file, getmail's
    /// oldmail files hold only the UIDL or UID): it matches a message of any size listed under that key. The first pull
    /// that lists the message records its real size.
    /// </summary>
    public const long UnknownSize = -1;

    /// <summary>Whether a message listed under this entry's key with <paramref name="size"/> bytes is the message this entry records.</summary>
    public bool MatchesSize(long size) => Size == UnknownSize || Size == size;
}

/// <summary>Per-account record of what has been pulled, so no message is pulled twice.</summary>
public interface IPullLedger
{
    /// <summary>The scope's last known validity, or null before its first run.</summary>
    Task<string?> GetScopeValidityAsync(string account, string scope, CancellationToken cancellationToken);

    Task SetScopeValidityAsync(string account, string scope, string validity, CancellationToken cancellationToken);

    /// <summary>Everything seen in the scope under one validity, by key.</summary>
    Task<IReadOnlyDictionary<string, SeenEntry>> LoadSeenAsync(string account, string scope, string validity, CancellationToken cancellationToken);

    /// <summary>Records entries as seen (idempotent upsert).</summary>
    Task MarkSeenAsync(string account, string scope, string validity, IReadOnlyCollection<SeenEntry> entries, CancellationToken cancellationToken);

    /// <summary>
    /// Forgets seen entries of messages that are gone upstream (deleted, or listed under an old validity),
    /// so the ledger stays as large as the mailbox, not as large as its history.
    /// </summary>
    Task ForgetSeenAsync(string account, string scope, string validity, IReadOnlyCollection<string> keys, CancellationToken cancellationToken);

    /// <summary>Records that one message could not be fetched, with the reason; it is retried on later runs.</summary>
    Task RecordMessageFailureAsync(string account, string scope, string key, string error, CancellationToken cancellationToken);

    /// <summary>Forgets an earlier failure of a message that has now been stored.</summary>
    Task ClearMessageFailureAsync(string account, string scope, string key, CancellationToken cancellationToken);

    /// <summary>Messages whose fetch keeps failing.</summary>
    Task<IReadOnlyList<MessageFailure>> ListMessageFailuresAsync(string account, CancellationToken cancellationToken);
}

/// <summary>A message that could not be fetched.</summary>
public sealed record MessageFailure(string Scope, string Key, int Attempts, DateTimeOffset LastAttempt, string Error);

/// <summary>A message ready to be committed to the spool.</summary>
public sealed record IngestedMessage(
    IngestFigures Figures,
    MessageSummary Summary,
    string DedupKey,
    string SourceAccount,
    string SourceKey,
    DateTimeOffset ReceivedAt)
{
    /// <summary>Set when the bytes were written into a pack (<see cref="ISpool.WritePackAsync"/>): the pack and where they start.</summary>
    public PackSlot? Pack { get; init; }

    /// <summary>
    /// A message whose bytes are whole in memory (mail CloudSpool writes itself, such as alerts): its figures,
    /// summary and dedup key computed as ingest does for a fetched message.
    /// </summary>
    public static IngestedMessage FromBytes(byte[] raw, string sourceAccount, string sourceKey, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(raw);
        IngestFigures figures;
        using (var meter = new IngestMeter())
        {
            meter.Append(raw);
            figures = meter.Complete();
        }
        var summary = MessageSummarizer.Summarize(new MemoryStream(raw, writable: false));
        return new IngestedMessage(figures, summary, Ingest.DedupKey.For(summary.MessageId, figures), sourceAccount, sourceKey, receivedAt);
    }
}

public enum StoreOutcome
{
    /// <summary>Newly stored.</summary>
    Stored,

    /// <summary>The mailbox already holds this message (same dedup key); nothing was written.</summary>
    Duplicate,
}

public sealed record StoreResult(StoreOutcome Outcome, string MessageKey);

/// <summary>Where a message's bytes were written in a pack.</summary>
public sealed record PackSlot(string BlobName, long Offset);

/// <summary>
/// The durable spool. Storing a message takes two steps, in this order: its raw bytes are written
/// (write-once, named by content hash), then its metadata is committed together with the mailbox's dedup
/// index; only a committed message counts as stored. Commits take many messages at once.
/// </summary>
public interface ISpool
{
    /// <summary>
    /// Writes the raw bytes once; writing the same bytes again is a no-op. <paramref name="content"/> is
    /// positioned at 0 and seekable.
    /// </summary>
    Task WriteContentAsync(string mailbox, IngestedMessage message, Stream content, CancellationToken cancellationToken);

    /// <summary>
    /// Writes the raw bytes of several (small) messages once, one after the other, as one new pack; returns where
    /// each one's bytes start, in the same order. Each <see cref="IngestedMessage.Pack"/> must then be set from the
    /// result before the messages are committed. Every content stream is positioned at 0 and seekable.
    /// </summary>
    Task<IReadOnlyList<PackSlot>> WritePackAsync(string mailbox, IReadOnlyList<(IngestedMessage Message, Stream Content)> members, CancellationToken cancellationToken);

    /// <summary>
    /// Commits the metadata of messages whose content is written; returns, in the same order, whether each
    /// was stored or the mailbox already held it. Returns only when every commit is durable.
    /// The messages of a pack are committed in one call, and never again in a later one (a pack whose commit
    /// failed is left to the repair check, and its messages go into a new pack): the keys of one call bound the pack.
    /// </summary>
    Task<IReadOnlyList<StoreResult>> CommitAsync(string mailbox, IReadOnlyList<IngestedMessage> messages, CancellationToken cancellationToken);
}

/// <summary>Control-state: per-account health and the history of runs.</summary>
public interface IPullStateStore
{
    Task<AccountPullState?> GetStateAsync(string account, CancellationToken cancellationToken);
    Task SaveStateAsync(AccountPullState state, CancellationToken cancellationToken);
    Task AppendRunAsync(PullRunRecord run, CancellationToken cancellationToken);
    Task<IReadOnlyList<PullRunRecord>> RecentRunsAsync(string account, int count, CancellationToken cancellationToken);
}

/// <summary>Cross-process mutual exclusion (blob leases in Azure).</summary>
public interface ILeaseManager
{
    /// <summary>Takes the named lease, or returns null at once when another holder has it.</summary>
    Task<ILease?> TryAcquireAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the named lease even from a live holder: its lease is broken (its renewal then fails and its
    /// <see cref="ILease.Lost"/> fires). Null when yet another holder took it in between.
    /// </summary>
    Task<ILease?> TakeOverAsync(string name, CancellationToken cancellationToken);
}

/// <summary>A held lease, renewed in the background until disposed.</summary>
public interface ILease : IAsyncDisposable
{
    /// <summary>Cancelled when the lease could not be renewed: the holder must stop work.</summary>
    CancellationToken Lost { get; }
}
