using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Health;

namespace CloudSpool.Storage.Azure;

/// <summary>Open alerts in the control table, partition <c>alert</c>, one row per account and condition.</summary>
public sealed class AzureAlertLedger(AzureStorage storage) : IAlertLedger
{
    public async Task<IReadOnlyList<AlertRecord>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new List<AlertRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StorageNames.AlertPartition}");
        await foreach (var e in storage.Control.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            result.Add(new AlertRecord
            {
                Account = e.GetString("Account") ?? "",
                Condition = e.GetString("Condition") ?? "",
                Mailbox = e.GetString("Mailbox") ?? "",
                RaisedAt = e.GetDateTimeOffset("RaisedAt") ?? default,
                Text = e.GetString("Text") ?? "",
                Delivered = e.GetBoolean("Delivered") ?? false,
                RecoveredAt = e.GetDateTimeOffset("RecoveredAt"),
                RecoveryText = e.GetString("RecoveryText"),
            });
        }
        return result;
    }

    public async Task<bool> AddAsync(AlertRecord alert, CancellationToken cancellationToken) =>
        await storage.Control.TryAddEntityAsync(ToEntity(alert), cancellationToken).ConfigureAwait(false);

    public Task UpdateAsync(AlertRecord alert, CancellationToken cancellationToken) =>
        storage.Control.UpsertEntityAsync(ToEntity(alert), TableUpdateMode.Replace, cancellationToken);

    public Task RemoveAsync(string account, string condition, CancellationToken cancellationToken) =>
        // A missing row answers 404 (no exception): removed by another worker already.
        storage.Control.DeleteEntityAsync(StorageNames.AlertPartition, StorageNames.AlertRowKey(account, condition), ETag.All, cancellationToken);

    private static TableEntity ToEntity(AlertRecord a) => new(StorageNames.AlertPartition, StorageNames.AlertRowKey(a.Account, a.Condition))
    {
        ["Account"] = a.Account,
        ["Condition"] = a.Condition,
        ["Mailbox"] = a.Mailbox,
        ["RaisedAt"] = a.RaisedAt,
        ["Text"] = a.Text,
        ["Delivered"] = a.Delivered,
        ["RecoveredAt"] = a.RecoveredAt,
        ["RecoveryText"] = a.RecoveryText,
    };
}
