using System.Runtime.CompilerServices;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs.Models;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>Retention and repair on the Azure spool (see <see cref="ISpoolMaintenance"/>).</summary>
public sealed class AzureSpoolMaintenance(AzureStorage storage, AzureSpool spool) : ISpoolMaintenance
{
    public async IAsyncEnumerable<SpoolMessage> ListOlderThanAsync(string mailbox, DateTimeOffset cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // Message keys start with the commit time (seconds after ingest), so "older than" is a key range, not a scan.
        var end = StorageNames.MessageRowKey(cutoff.UtcTicks, "00000000");
        await foreach (var m in spool.ListAsync(mailbox, null, cancellationToken).ConfigureAwait(false))
        {
            if (string.CompareOrdinal(m.MessageKey, end) >= 0)
                yield break;
            yield return m;
        }
    }

    public async Task RemoveAsync(SpoolMessage message, CancellationToken cancellationToken)
    {
        if (await spool.Legacy.GetAsync(message.Mailbox, message.MessageKey, cancellationToken).ConfigureAwait(false) is not null)
            await RemoveLegacyRowAsync(message, cancellationToken).ConfigureAwait(false);
        else if (await spool.RemoveFromSegmentAsync(message.Mailbox, message.MessageKey, message.DedupKey, cancellationToken).ConfigureAwait(false) is { } segmentBlob)
            await spool.SegmentBlobs.DeleteAsync(segmentBlob, cancellationToken).ConfigureAwait(false);
        // (Removed by an earlier, interrupted run, or another worker, when neither holds it: only the blob may be left.)

        if (message.Pack is { } pack && await AnyNamesAsync(message.Mailbox, message.BlobName, pack, cancellationToken).ConfigureAwait(false))
            return; // other messages of the pack are still in the mailbox: the pack goes with the last of them
        await storage.Spool.GetBlobClient(message.BlobName).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private async Task RemoveLegacyRowAsync(SpoolMessage message, CancellationToken cancellationToken)
    {
        try
        {
            await storage.Messages.SubmitTransactionAsync(
            [
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(message.Mailbox, message.MessageKey), ETag.All),
                new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(message.Mailbox, StorageNames.DedupRowKey(message.DedupKey)), ETag.All),
                spool.ChangeAction(message.Mailbox),
            ], cancellationToken).ConfigureAwait(false);
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 404)
        {
            // Removed by an earlier, interrupted run (or another worker): only the blob may be left.
        }
        spool.Legacy.Forget(message.Mailbox);
    }

    /// <summary>
    /// Whether a message still names the pack: every message of a pack was committed in one call with keys between its
    /// first and last member's, so the rows and segments of that short range hold every one that can.
    /// </summary>
    private async Task<bool> AnyNamesAsync(string mailbox, string blobName, SpoolPackPlace pack, CancellationToken cancellationToken)
    {
        if (!pack.FirstKey.StartsWith(StorageNames.MessageRowPrefix, StringComparison.Ordinal) ||
            !pack.LastKey.StartsWith(StorageNames.MessageRowPrefix, StringComparison.Ordinal))
            return true; // a row without its range cannot tell: keep the pack (the repair check deletes what nobody names)
        return await spool.Legacy.AnyNamesAsync(mailbox, blobName, pack.FirstKey, pack.LastKey, cancellationToken).ConfigureAwait(false)
            || await spool.SegmentRows.AnyNamesAsync(mailbox, blobName, pack.FirstKey, pack.LastKey, cancellationToken).ConfigureAwait(false);
    }

    public async Task<SpoolCheck> CheckAsync(string mailbox, TimeSpan graceAge, bool fix, CancellationToken cancellationToken)
    {
        var rows = new Dictionary<string, string>(StringComparer.Ordinal); // blob name -> a message key naming it
        var messages = 0;
        await foreach (var m in spool.ScanIndexAsync(mailbox, cancellationToken).ConfigureAwait(false)) // no order needed
        {
            rows[m.BlobName] = m.MessageKey;
            messages++;
        }
        await foreach (var segment in spool.SegmentRows.RowsAsync(mailbox, null, cancellationToken).ConfigureAwait(false))
            rows[segment.Blob] = segment.First;

        var blobs = new HashSet<string>(StringComparer.Ordinal);
        var orphans = new List<string>();
        var deleted = 0;
        var youngest = DateTimeOffset.UtcNow - graceAge;
        await foreach (var blob in storage.Spool.GetBlobsAsync(new GetBlobsOptions { Prefix = mailbox + "/" }, cancellationToken).ConfigureAwait(false))
        {
            blobs.Add(blob.Name);
            if (rows.ContainsKey(blob.Name) || blob.Properties.LastModified > youngest)
                continue;
            orphans.Add(blob.Name);
            if (fix)
            {
                // Older than the grace age, so not an ingest still committing; and only if unchanged since listed.
                await storage.Spool.GetBlobClient(blob.Name).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots,
                    new BlobRequestConditions { IfMatch = blob.Properties.ETag }, cancellationToken).ConfigureAwait(false);
                deleted++;
            }
        }
        var missing = rows.Where(r => !blobs.Contains(r.Key)).Select(r => r.Value).Distinct().Order(StringComparer.Ordinal).ToList();
        // Blobs counts the blobs of messages, as before segments: a segment's blob is metadata.
        var contentBlobs = blobs.Count(b => !StorageNames.IsSegmentBlob(mailbox, b));
        return new SpoolCheck(mailbox, messages, contentBlobs, missing, orphans, deleted);
    }
}
