using System.Text.Json;
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
    private readonly RunHistory _history = new(storage, TimeSpan.FromDays(30));

    public Task AppendRunAsync(PullRunRecord run, CancellationToken cancellationToken) =>
        _history.AppendAsync(StorageNames.RunsPartition(run.Account), run.Started, run.Outcome.ToString(), run, cancellationToken);

    public Task<IReadOnlyList<PullRunRecord>> RecentRunsAsync(string account, int count, CancellationToken cancellationToken) =>
        _history.RecentAsync<PullRunRecord>(StorageNames.RunsPartition(account), count, cancellationToken);
}
