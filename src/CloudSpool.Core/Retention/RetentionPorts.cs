using CloudSpool.Core.Spool;

namespace CloudSpool.Core.Retention;

/// <summary>Removing messages from the spool, and finding what crashes left behind.</summary>
public interface ISpoolMaintenance
{
    /// <summary>Messages of a mailbox ingested before <paramref name="cutoff"/>, oldest first (a range query on the ingest-time key).</summary>
    IAsyncEnumerable<SpoolMessage> ListOlderThanAsync(string mailbox, DateTimeOffset cutoff, CancellationToken cancellationToken);

    /// <summary>
    /// Removes a message: first its metadata and dedup rows (in one transaction, so readers stop seeing it at
    /// once), then its blob (a pack's blob only with the last of its messages). A crash in between leaves only an
    /// unreferenced blob, which <see cref="CheckAsync"/> finds.
    /// </summary>
    Task RemoveAsync(SpoolMessage message, CancellationToken cancellationToken);

    /// <summary>
    /// Compares a mailbox's metadata with its blobs: rows whose blob is missing, and blobs no row names that are
    /// older than <paramref name="graceAge"/> (younger ones may belong to an ingest still committing). With
    /// <paramref name="fix"/>, deletes those blobs.
    /// </summary>
    Task<SpoolCheck> CheckAsync(string mailbox, TimeSpan graceAge, bool fix, CancellationToken cancellationToken);
}

/// <summary>What a consistency check of one mailbox found.</summary>
public sealed record SpoolCheck(string Mailbox, int Messages, int Blobs, IReadOnlyList<string> RowsWithoutBlob, IReadOnlyList<string> BlobsWithoutRow, int BlobsDeleted)
{
    public bool Consistent => RowsWithoutBlob.Count == 0 && BlobsWithoutRow.Count == 0;
}
