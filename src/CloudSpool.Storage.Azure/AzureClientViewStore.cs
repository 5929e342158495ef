using Azure.Data.Tables;
using CloudSpool.Core.Edge;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Per-client views in the <c>{p}views</c> table: one partition per mailbox and client identity
/// (<see cref="StorageNames.ViewPartition"/>), one row per hidden message key.
/// </summary>
public sealed class AzureClientViewStore(AzureStorage storage, TimeProvider clock) : IClientViewStore
{
    /// <summary>Entities in one entity-group transaction (the service's limit).</summary>
    private const int BatchSize = 100;

    public async Task<IReadOnlySet<string>> ListHiddenAsync(string mailbox, string client, CancellationToken cancellationToken)
    {
        var partition = StorageNames.ViewPartition(mailbox, client);
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {partition} and RowKey gt {StorageNames.MessageRowPrefix} and RowKey lt {StorageNames.PrefixEnd(StorageNames.MessageRowPrefix)}");
        var result = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var e in storage.Views.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["RowKey"], cancellationToken: cancellationToken).ConfigureAwait(false))
            result.Add(e.RowKey);
        return result;
    }

    public Task HideAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken) =>
        HideAsync(StorageNames.ViewPartition(mailbox, client), messageKeys, fence: null, cancellationToken);

    public Task<bool> CommitHiddenAsync(string mailbox, string view, IReadOnlyCollection<string> messageKeys, string fence, CancellationToken cancellationToken) =>
        HideAsync(StorageNames.ViewPartition(mailbox, view), messageKeys, fence, cancellationToken);

    /// <summary>
    /// Upserts the markers: hiding a hidden message again changes nothing, so a retried QUIT is harmless. Each batch
    /// also replaces the view's change row, so a reader holding the view sees it changed, and with a fence updates the
    /// session row on the condition that it is still the fence (the last batch ends the commit mark): a newer claim
    /// fails the whole batch.
    /// </summary>
    private async Task<bool> HideAsync(string partition, IReadOnlyCollection<string> messageKeys, string? fence, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var chunks = messageKeys.Distinct(StringComparer.Ordinal).Chunk(BatchSize - 2).ToList();
        if (chunks.Count == 0 && fence is not null)
            chunks.Add([]);
        for (var i = 0; i < chunks.Count; i++)
        {
            var actions = chunks[i].Select(key => new TableTransactionAction(TableTransactionActionType.UpsertReplace,
                new TableEntity(partition, key) { ["HiddenAt"] = now })).ToList();
            actions.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, new TableEntity(partition, StorageNames.HeadRowKey) { ["Changed"] = now }));
            if (fence is not null)
            {
                actions.Add(new TableTransactionAction(TableTransactionActionType.UpdateMerge,
                    new TableEntity(partition, StorageNames.SessionRowKey) { ["Committing"] = i < chunks.Count - 1 }, new global::Azure.ETag(fence)));
            }
            try
            {
                var response = await storage.ViewBatches.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
                if (fence is not null)
                    fence = response.Value[^1].Headers.ETag?.ToString() ?? throw new InvalidOperationException("the session row's new ETag was not returned");
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
                : await storage.Views.UpdateEntityAsync(row, new global::Azure.ETag(seen.Fence), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            return response.Headers.ETag?.ToString();
        }
        catch (global::Azure.RequestFailedException ex) when (ex.IsConflict() || ex.IsPreconditionFailed() || ex.IsNotFound())
        {
            return null;
        }
    }

    public async Task<string?> BeginCommitAsync(string mailbox, string view, string fence, CancellationToken cancellationToken)
    {
        var mark = new TableEntity(StorageNames.ViewPartition(mailbox, view), StorageNames.SessionRowKey) { ["Committing"] = true };
        try
        {
            var response = await storage.Views.UpdateEntityAsync(mark, new global::Azure.ETag(fence), TableUpdateMode.Merge, cancellationToken).ConfigureAwait(false);
            return response.Headers.ETag?.ToString();
        }
        catch (global::Azure.RequestFailedException ex) when (ex.IsPreconditionFailed() || ex.IsNotFound())
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

    public async Task ForgetAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken)
    {
        var partition = StorageNames.ViewPartition(mailbox, client);
        foreach (var key in messageKeys.Distinct(StringComparer.Ordinal))
        {
            // One by one: a marker already gone (a sweep by another edge) answers 404 and is fine.
            try
            {
                await storage.Views.DeleteEntityAsync(partition, key, global::Azure.ETag.All, cancellationToken).ConfigureAwait(false);
            }
            catch (global::Azure.RequestFailedException ex) when (ex.Status == 403)
            {
                throw new UnauthorizedAccessException($"the storage credential may not delete ({ex.ErrorCode}; an edge's SAS deletes nothing)", ex);
            }
        }
    }
}
