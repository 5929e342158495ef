using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Scheduling;

namespace CloudSpool.Storage.Azure;

/// <summary>Schedule edits in the control table, partition <c>schedule</c>, one row per job.</summary>
public sealed class AzureScheduleStore(AzureStorage storage) : IScheduleStore
{
    public async Task<IReadOnlyDictionary<string, ScheduleOverride>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, ScheduleOverride>(StringComparer.Ordinal);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StorageNames.SchedulePartition}");
        await foreach (var e in storage.Control.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var job = StorageNames.Unescape(e.RowKey);
            result[job] = new ScheduleOverride(job, e.GetString("Cron") ?? "", e.GetString("TimeZone") ?? "UTC", e.GetDateTimeOffset("UpdatedAt") ?? default);
        }
        return result;
    }

    public Task SetAsync(ScheduleOverride schedule, CancellationToken cancellationToken) =>
        storage.Control.UpsertEntityAsync(new TableEntity(StorageNames.SchedulePartition, StorageNames.Escape(schedule.Job))
        {
            ["Cron"] = schedule.Cron,
            ["TimeZone"] = schedule.TimeZone,
            ["UpdatedAt"] = schedule.UpdatedAt,
        }, TableUpdateMode.Replace, cancellationToken);

    public async Task<bool> ResetAsync(string job, CancellationToken cancellationToken)
    {
        // The Tables SDK reports a missing entity as a 404 response, not as an exception.
        var response = await storage.Control.DeleteEntityAsync(StorageNames.SchedulePartition, StorageNames.Escape(job), ETag.All, cancellationToken).ConfigureAwait(false);
        return response.Status != 404;
    }
}
