using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Edge;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Per-client views in the <c>{p}views</c> table: one partition per mailbox and client identity
/// (<see cref="StorageNames.ViewPartition"/>). The hidden message keys are kept in chunk rows, <c>c:{ticks}-{id}</c>, each
/// holding up to <see cref="KeysPerChunk"/> keys (Brotli, about 10 bytes a key): a QUIT adds one, and
/// <see cref="CompactAsync"/> merges the small ones. Earlier versions wrote a row per hidden key, <c>m:{key}</c>; those
/// are still read, swept and merged. A row per key would cost the embedded store about 200 bytes a message for every
/// client that deletes what it downloads, as much as the spool itself.
/// </summary>
public sealed class AzureClientViewStore(AzureStorage storage, TimeProvider clock) : IClientViewStore
{
    /// <summary>Entities in one entity-group transaction (the service's limit).</summary>
    private const int BatchSize = 100;

    /// <summary>Keys in one chunk row: 2,000 keys of 30 characters stay under a binary property's 64 KiB even uncompressed.</summary>
    internal const int KeysPerChunk = 2000;

    /// <summary>Small rows of a view past which <see cref="CompactAsync"/> merges them.</summary>
    internal const int CompactAbove = 32;

    /// <summary>A row with fewer keys than this is small: a QUIT's, a marker of an earlier version, or a merge of a few.</summary>
    internal const int SmallRow = KeysPerChunk / 2;

    /// <summary>Rows merged in one transaction, with the rows that replace them within the service's limit.</summary>
    private const int MergeRows = 64;

    private const string ChunkPrefix = "c:";

    /// <summary>One row of a view partition as read: a chunk of keys, or a marker of one key from an earlier version.</summary>
    private sealed record ViewRow(string RowKey, ETag ETag, string[] Keys, bool IsChunk);

    /// <summary>
    /// How many small rows each view has, as last listed here plus the rows added here since, so that compaction reads
    /// only the views that need it.
    /// </summary>
    private readonly ConcurrentDictionary<string, int> _smallRows = new(StringComparer.Ordinal);

    public async Task<IReadOnlySet<string>> ListHiddenAsync(string mailbox, string client, CancellationToken cancellationToken)
    {
        var partition = StorageNames.ViewPartition(mailbox, client);
        var rows = await ReadRowsAsync(partition, smallOnly: false, cancellationToken).ConfigureAwait(false);
        _smallRows[partition] = rows.Count(r => r.Keys.Length < SmallRow);
        return rows.SelectMany(r => r.Keys).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>
    /// The views of a mailbox: the partitions under its prefix, read with their keys only (one query over the range of
    /// partitions; the retention run calls this once a day).
    /// </summary>
    public async Task<IReadOnlyList<string>> ListViewsAsync(string mailbox, CancellationToken cancellationToken)
    {
        var prefix = StorageNames.ViewPartition(mailbox, "");
        var filter = TableClient.CreateQueryFilter($"PartitionKey ge {prefix} and PartitionKey lt {StorageNames.PrefixEnd(prefix)}");
        var views = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var e in storage.Views.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["PartitionKey"], cancellationToken: cancellationToken).ConfigureAwait(false))
            views.Add(StorageNames.Unescape(e.PartitionKey[prefix.Length..]));
        return [.. views];
    }

    /// <summary>
    /// Every chunk and marker row of a view partition, or only the small ones, in one query (on Azurite a query scans the
    /// whole table).
    /// </summary>
    private async Task<List<ViewRow>> ReadRowsAsync(string partition, bool smallOnly, CancellationToken cancellationToken)
    {
        var rows = new List<ViewRow>();
        var chunks = StorageNames.PrefixEnd(ChunkPrefix);
        var markers = StorageNames.PrefixEnd(StorageNames.MessageRowPrefix);
        var filter = smallOnly
            ? TableClient.CreateQueryFilter(
                $"PartitionKey eq {partition} and ((RowKey ge {ChunkPrefix} and RowKey lt {chunks} and Count lt {SmallRow}) or (RowKey ge {StorageNames.MessageRowPrefix} and RowKey lt {markers}))")
            : TableClient.CreateQueryFilter($"PartitionKey eq {partition}");
        await foreach (var e in storage.Views.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["RowKey", "K"], cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (e.RowKey.StartsWith(ChunkPrefix, StringComparison.Ordinal))
                rows.Add(new ViewRow(e.RowKey, e.ETag, DecodeKeys(e.GetBinary("K") ?? []), IsChunk: true));
            else if (e.RowKey.StartsWith(StorageNames.MessageRowPrefix, StringComparison.Ordinal))
                rows.Add(new ViewRow(e.RowKey, e.ETag, [e.RowKey], IsChunk: false));
        }
        return rows;
    }

    /// <summary>The keys, sorted and joined by line feeds, compressed with Brotli.</summary>
    internal static byte[] EncodeKeys(IEnumerable<string> keys)
    {
        var text = Encoding.ASCII.GetBytes(string.Join('\n', keys));
        using var buffer = new MemoryStream();
        using (var brotli = new BrotliStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
            brotli.Write(text);
        return buffer.ToArray();
    }

    internal static string[] DecodeKeys(byte[] compressed)
    {
        if (compressed.Length == 0)
            return [];
        using var brotli = new BrotliStream(new MemoryStream(compressed, writable: false), CompressionMode.Decompress);
        using var text = new MemoryStream();
        brotli.CopyTo(text);
        return text.Length == 0 ? [] : Encoding.ASCII.GetString(text.GetBuffer(), 0, (int)text.Length).Split('\n');
    }

    /// <summary>New chunk rows holding <paramref name="keys"/>, each under a key of its own.</summary>
    private List<TableEntity> ChunkRows(string partition, IEnumerable<string> keys)
    {
        var now = clock.GetUtcNow();
        var id = Guid.NewGuid().ToString("N")[..12];
        return keys.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Chunk(KeysPerChunk)
            .Select((chunk, i) => new TableEntity(partition, $"{ChunkPrefix}{now.UtcTicks:D19}-{id}-{i:D4}")
            {
                ["K"] = EncodeKeys(chunk),
                ["Count"] = chunk.Length,
                ["HiddenAt"] = now,
            })
            .ToList();
    }

    /// <summary>How many of these new chunk rows are small (see <see cref="SmallRow"/>).</summary>
    private static int SmallRowsOf(IEnumerable<TableEntity> chunkRows) => chunkRows.Count(row => row.GetInt32("Count") < SmallRow);

    private static UnauthorizedAccessException DeleteRefused(RequestFailedException ex) =>
        new($"the storage credential may not delete ({ex.ErrorCode}; an edge's SAS deletes nothing)", ex);

    public Task HideAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken) =>
        HideAsync(StorageNames.ViewPartition(mailbox, client), messageKeys, fence: null, cancellationToken);

    public Task<bool> CommitHiddenAsync(string mailbox, string view, IReadOnlyCollection<string> messageKeys, string fence, CancellationToken cancellationToken) =>
        HideAsync(StorageNames.ViewPartition(mailbox, view), messageKeys, fence, cancellationToken);

    /// <summary>
    /// Adds the keys as chunk rows: hiding a hidden message again adds a row that changes nothing, so a retried QUIT is
    /// harmless. Each transaction also replaces the view's change row, so a reader holding the view sees it changed, and
    /// updates the session row: with a fence on the condition that it is still the fence (the last transaction ends the
    /// commit mark), so a newer claim fails the whole transaction; without one unconditionally (no commit mark), so the
    /// claim moves as with any other write. One transaction holds up to 196,000 keys.
    /// </summary>
    private async Task<bool> HideAsync(string partition, IReadOnlyCollection<string> messageKeys, string? fence, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var batches = ChunkRows(partition, messageKeys).Chunk(BatchSize - 2).ToList();
        if (batches.Count == 0 && fence is not null)
            batches.Add([]);
        for (var i = 0; i < batches.Count; i++)
        {
            var actions = batches[i].Select(row => new TableTransactionAction(TableTransactionActionType.Add, row)).ToList();
            actions.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, new TableEntity(partition, StorageNames.HeadRowKey) { ["Changed"] = now }));
            actions.Add(fence is null
                ? new TableTransactionAction(TableTransactionActionType.UpsertMerge, new TableEntity(partition, StorageNames.SessionRowKey) { ["Committing"] = false })
                : new TableTransactionAction(TableTransactionActionType.UpdateMerge,
                    new TableEntity(partition, StorageNames.SessionRowKey) { ["Committing"] = i < batches.Count - 1 }, new ETag(fence)));
            try
            {
                var response = await storage.ViewBatches.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
                if (fence is not null)
                    fence = response.Value[^1].Headers.ETag?.ToString() ?? throw new InvalidOperationException("the session row's new ETag was not returned");
                var small = SmallRowsOf(batches[i]);
                _smallRows.AddOrUpdate(partition, small, (_, n) => n + small);
            }
            catch (TableTransactionFailedException ex) when (fence is not null && (ex.IsPreconditionFailed() || ex.IsNotFound()))
            {
                return false;
            }
        }
        return true;
    }

    public async Task<ViewClaim> ReadClaimAsync(string mailbox, string view, CancellationToken cancellationToken)
    {
        var row = await storage.Views.GetEntityIfExistsAsync<TableEntity>(StorageNames.ViewPartition(mailbox, view), StorageNames.SessionRowKey,
            select: ["Client", "Committing"], cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue
            ? new ViewClaim(row.Value!.ETag.ToString(), row.Value.GetString("Client"), row.Value.GetBoolean("Committing") == true)
            : new ViewClaim(null, null, false);
    }

    public async Task<string?> ClaimAsync(string mailbox, string view, string client, ViewClaim seen, CancellationToken cancellationToken)
    {
        var row = new TableEntity(StorageNames.ViewPartition(mailbox, view), StorageNames.SessionRowKey)
        {
            ["Client"] = client,
            ["Committing"] = false,
            ["ClaimedAt"] = clock.GetUtcNow(),
        };
        try
        {
            var response = seen.Fence is null
                ? await storage.Views.AddEntityAsync(row, cancellationToken).ConfigureAwait(false)
                : await storage.Views.UpdateEntityAsync(row, new ETag(seen.Fence), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            return response.Headers.ETag?.ToString();
        }
        catch (RequestFailedException ex) when (ex.IsConflict() || ex.IsPreconditionFailed() || ex.IsNotFound())
        {
            return null;
        }
    }

    public async Task<string?> BeginCommitAsync(string mailbox, string view, string fence, CancellationToken cancellationToken)
    {
        var mark = new TableEntity(StorageNames.ViewPartition(mailbox, view), StorageNames.SessionRowKey) { ["Committing"] = true };
        try
        {
            var response = await storage.Views.UpdateEntityAsync(mark, new ETag(fence), TableUpdateMode.Merge, cancellationToken).ConfigureAwait(false);
            return response.Headers.ETag?.ToString();
        }
        catch (RequestFailedException ex) when (ex.IsPreconditionFailed() || ex.IsNotFound())
        {
            return null;
        }
    }

    public async Task<string?> ChangeTokenAsync(string mailbox, string client, CancellationToken cancellationToken)
    {
        var row = await storage.Views.GetEntityIfExistsAsync<TableEntity>(StorageNames.ViewPartition(mailbox, client), StorageNames.HeadRowKey,
            select: ["Changed"], cancellationToken: cancellationToken).ConfigureAwait(false);
        // No change row: nothing was committed since change rows exist, which is a state of its own ("").
        return row.HasValue ? row.Value!.ETag.ToString() : "";
    }

    /// <summary>
    /// Takes the keys out of the view: markers of earlier versions are deleted, chunks rewritten without them (deleted
    /// once empty). A row another sweep or a compaction changed since it was read is left for the next sweep.
    /// </summary>
    public async Task ForgetAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken)
    {
        var partition = StorageNames.ViewPartition(mailbox, client);
        var forget = messageKeys.ToHashSet(StringComparer.Ordinal);
        foreach (var row in await ReadRowsAsync(partition, smallOnly: false, cancellationToken).ConfigureAwait(false))
        {
            var keep = row.Keys.Where(k => !forget.Contains(k)).ToList();
            if (keep.Count == row.Keys.Length)
                continue;
            try
            {
                if (keep.Count == 0)
                    await storage.Views.DeleteEntityAsync(partition, row.RowKey, row.IsChunk ? row.ETag : ETag.All, cancellationToken).ConfigureAwait(false);
                else
                    await storage.Views.UpdateEntityAsync(new TableEntity(partition, row.RowKey) { ["K"] = EncodeKeys(keep), ["Count"] = keep.Count },
                        row.ETag, TableUpdateMode.Merge, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException ex) when (ex.IsPreconditionFailed() || ex.IsNotFound())
            {
                // Changed or gone since it was read: the next sweep reads it again.
            }
            catch (RequestFailedException ex) when (ex.Status == 403)
            {
                throw DeleteRefused(ex);
            }
        }
    }

    /// <summary>
    /// Merges a view's small rows (chunks of a few keys, one a QUIT, and markers of earlier versions) into chunks, when it
    /// has more than <see cref="CompactAbove"/> of them as far as this process knows. Each transaction adds the merged chunks and
    /// deletes the rows they replace under the ETags read, so a hidden key is never lost: a row changed in between fails
    /// the transaction and stays. Returns how many rows were merged.
    /// </summary>
    public async Task<int> CompactAsync(string mailbox, string view, CancellationToken cancellationToken)
    {
        var partition = StorageNames.ViewPartition(mailbox, view);
        if (_smallRows.GetValueOrDefault(partition) <= CompactAbove)
            return 0;
        var small = await ReadRowsAsync(partition, smallOnly: true, cancellationToken).ConfigureAwait(false);
        _smallRows[partition] = small.Count;
        if (small.Count <= CompactAbove)
            return 0;
        var merged = 0;
        var added = 0;
        foreach (var group in small.Chunk(MergeRows))
        {
            var chunkRows = ChunkRows(partition, group.SelectMany(r => r.Keys));
            var actions = chunkRows.Select(row => new TableTransactionAction(TableTransactionActionType.Add, row)).ToList();
            actions.AddRange(group.Select(r => new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(partition, r.RowKey), r.IsChunk ? r.ETag : ETag.All)));
            try
            {
                await storage.Views.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
                merged += group.Length;
                added += SmallRowsOf(chunkRows);
            }
            catch (TableTransactionFailedException ex) when (ex.IsPreconditionFailed() || ex.IsNotFound())
            {
                // A sweep changed one of the rows: this group is merged another time.
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 403)
            {
                throw DeleteRefused(ex);
            }
        }
        _smallRows[partition] = small.Count - merged + added;
        return merged;
    }
}
