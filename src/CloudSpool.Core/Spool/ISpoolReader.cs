namespace CloudSpool.Core.Spool;

/// <summary>Read access to the spool.</summary>
public interface ISpoolReader
{
    /// <summary>The index entries of a mailbox in key order, starting after <paramref name="afterKey"/> when given.</summary>
    IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, CancellationToken cancellationToken);

    /// <summary>
    /// Every index entry of a mailbox, each message once, in whatever order storage yields them most cheaply. For a
    /// reader that takes the whole mailbox and orders it itself: putting a listing in key order can mean holding much of
    /// it until it is done (see the spool's own notes), which such a reader pays for twice.
    /// </summary>
    IAsyncEnumerable<SpoolIndexEntry> ScanIndexAsync(string mailbox, CancellationToken cancellationToken) => ListIndexAsync(mailbox, null, cancellationToken);

    /// <summary>The smallest message key of a mailbox (its oldest message), or null when it is empty.</summary>
    Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken);

    /// <summary>
    /// An opaque value that changes whenever a message is committed to or removed from the mailbox (changed in the same
    /// transaction), so a reader that saw the same value before can skip its catch-up queries. Null when the spool
    /// cannot tell (a mailbox never written since change tokens exist): the reader must query.
    /// </summary>
    Task<string?> ChangeTokenAsync(string mailbox, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    /// <summary>
    /// Opens raw bytes stored under a blob name (streamed): the whole blob when <paramref name="offset"/> is null, else the
    /// <paramref name="length"/> bytes from <paramref name="offset"/> (one message of a pack).
    /// </summary>
    Task<Stream> OpenContentAsync(string blobName, long? offset, long length, CancellationToken cancellationToken);

    /// <summary>Messages of a mailbox in ingest order, starting after <paramref name="afterKey"/> when given.</summary>
    IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, CancellationToken cancellationToken);

    Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken);

    /// <summary>Opens the raw bytes of a message for reading (streamed).</summary>
    Task<Stream> OpenRawAsync(SpoolMessage message, CancellationToken cancellationToken) =>
        OpenContentAsync(message.BlobName, message.Pack?.Offset, message.RawLength, cancellationToken);
}

public static class SpoolReaderExtensions
{
    /// <summary>Opens the raw bytes of an indexed message (streamed).</summary>
    public static Task<Stream> OpenContentAsync(this ISpoolReader spool, SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spool);
        ArgumentNullException.ThrowIfNull(entry);
        return spool.OpenContentAsync(entry.BlobName, entry.BlobOffset, entry.RawLength, cancellationToken);
    }
}
