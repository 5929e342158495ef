using System.Text.Json;
using Azure;
using Azure.Data.Tables;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Run records of every job in the runs table: partition per job (<c>pull:ACCOUNT</c>, <c>retention</c>), row key
/// inverted ticks so the latest comes first; records older than the history period are removed as new ones arrive.
/// </summary>
internal sealed class RunHistory(AzureStorage storage, TimeSpan keep)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task AppendAsync<T>(string partition, DateTimeOffset started, string outcome, T run, CancellationToken cancellationToken)
    {
        // Upsert: two runs starting in the same tick (never in practice) must not fail the second.
        await storage.Runs.UpsertEntityAsync(new TableEntity(partition, StorageNames.RunRowKey(started))
        {
            ["Outcome"] = outcome,
            ["Run"] = JsonSerializer.Serialize(run, Json),
        }, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);

        // Keys are inverted ticks: everything older than the cut-off sorts after its key.
        var cutoff = StorageNames.RunRowKey(started - keep);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {partition} and RowKey gt {cutoff}");
        await foreach (var old in storage.Runs.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "RowKey"], cancellationToken: cancellationToken).ConfigureAwait(false))
            await storage.Runs.DeleteEntityAsync(old.PartitionKey, old.RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<T>> RecentAsync<T>(string partition, int count, CancellationToken cancellationToken)
    {
        var result = new List<T>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {partition}");
        await foreach (var e in storage.Runs.QueryAsync<TableEntity>(filter, maxPerPage: count, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            result.Add(JsonSerializer.Deserialize<T>(e.GetString("Run"), Json)!);
            if (result.Count >= count)
                break;
        }
        return result;
    }
}
