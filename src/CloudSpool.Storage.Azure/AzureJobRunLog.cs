using System.Text.Json;
using Azure.Data.Tables;
using CloudSpool.Core.Retention;

namespace CloudSpool.Storage.Azure;

/// <summary>Runs of jobs other than pull, in the runs table with the job name as partition (latest first).</summary>
public sealed class AzureJobRunLog(AzureStorage storage) : IJobRunLog
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public Task AppendAsync(JobRunRecord run, CancellationToken cancellationToken) =>
        storage.Runs.UpsertEntityAsync(new TableEntity(run.Job, StorageNames.RunRowKey(run.Started))
        {
            ["Outcome"] = run.Outcome.ToString(),
            ["Run"] = JsonSerializer.Serialize(run, Json),
        }, TableUpdateMode.Replace, cancellationToken);

    public async Task<IReadOnlyList<JobRunRecord>> RecentAsync(string job, int count, CancellationToken cancellationToken)
    {
        var result = new List<JobRunRecord>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {job}");
        await foreach (var e in storage.Runs.QueryAsync<TableEntity>(filter, maxPerPage: count, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            result.Add(JsonSerializer.Deserialize<JobRunRecord>(e.GetString("Run"), Json)!);
            if (result.Count >= count)
                break;
        }
        return result;
    }
}
