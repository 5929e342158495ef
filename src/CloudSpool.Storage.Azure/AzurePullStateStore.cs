using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Pull;

namespace CloudSpool.Storage.Azure;

/// <summary>Account health in the control table and run history in the runs table (latest first).</summary>
public sealed class AzurePullStateStore(AzureStorage storage) : IPullStateStore
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<AccountPullState?> GetStateAsync(string account, CancellationToken cancellationToken)
    {
        var row = await storage.Control.GetEntityIfExistsAsync<TableEntity>(StorageNames.PullStatePartition, account, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? JsonSerializer.Deserialize<AccountPullState>(row.Value!.GetString("State"), Json) : null;
    }

    public Task SaveStateAsync(AccountPullState state, CancellationToken cancellationToken) =>
        storage.Control.UpsertEntityAsync(new TableEntity(StorageNames.PullStatePartition, state.Account)
        {
            ["State"] = JsonSerializer.Serialize(state, Json),
        }, TableUpdateMode.Replace, cancellationToken);

    /// <summary>How long run records are kept; older ones are removed as new ones arrive.</summary>
    public TimeSpan RunHistory { get; init; } = TimeSpan.FromDays(30);

    public async Task AppendRunAsync(PullRunRecord run, CancellationToken cancellationToken)
    {
        var partition = StorageNames.RunsPartition(run.Account);
        // Upsert: two runs starting in the same tick (never in practice) must not fail the second.
        await storage.Runs.UpsertEntityAsync(new TableEntity(partition, StorageNames.RunRowKey(run.Started))
        {
            ["Outcome"] = run.Outcome.ToString(),
            ["Run"] = JsonSerializer.Serialize(run, Json),
        }, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);

        // Keys are inverted ticks: everything older than the cut-off sorts after its key.
        var cutoff = StorageNames.RunRowKey(run.Started - RunHistory);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {partition} and RowKey gt {cutoff}");
        await foreach (var old in storage.Runs.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "RowKey"], cancellationToken: cancellationToken).ConfigureAwait(false))
            await storage.Runs.DeleteEntityAsync(old.PartitionKey, old.RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<PullRunRecord>> RecentRunsAsync(string account, int count, CancellationToken cancellationToken)
    {
        var result = new List<PullRunRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StorageNames.RunsPartition(account)}");
        await foreach (var e in storage.Runs.QueryAsync<TableEntity>(filter, maxPerPage: count, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            result.Add(JsonSerializer.Deserialize<PullRunRecord>(e.GetString("Run"), Json)!);
            if (result.Count >= count)
                break;
        }
        return result;
    }
}
