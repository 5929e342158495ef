namespace CloudSpool.Core.Spool;

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
