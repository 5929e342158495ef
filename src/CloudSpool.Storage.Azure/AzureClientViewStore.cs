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

    public async Task HideAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken)
    {
        var partition = StorageNames.ViewPartition(mailbox, client);
        var now = clock.GetUtcNow();
        // Upserts: hiding a hidden message again changes nothing, so a retried QUIT is harmless.
        // Each batch also replaces the view's change row, so a reader holding the view sees it changed.
        foreach (var chunk in messageKeys.Distinct(StringComparer.Ordinal).Chunk(BatchSize - 1))
        {
            var actions = chunk.Select(key => new TableTransactionAction(TableTransactionActionType.UpsertReplace,
                new TableEntity(partition, key) { ["HiddenAt"] = now })).ToList();
            actions.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, new TableEntity(partition, StorageNames.HeadRowKey) { ["Changed"] = now }));
            await storage.Views.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
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
            await storage.Views.DeleteEntityAsync(partition, key, global::Azure.ETag.All, cancellationToken).ConfigureAwait(false);
        }
    }
}
