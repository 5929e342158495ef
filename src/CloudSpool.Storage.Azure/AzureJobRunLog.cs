using CloudSpool.Core.Retention;

namespace CloudSpool.Storage.Azure;

/// <summary>Runs of jobs other than pull, in the runs table with the job name as partition (latest first, 30 days kept).</summary>
public sealed class AzureJobRunLog(AzureStorage storage) : IJobRunLog
{
    private readonly RunHistory _history = new(storage, TimeSpan.FromDays(30));

    public Task AppendAsync(JobRunRecord run, CancellationToken cancellationToken) =>
        _history.AppendAsync(run.Job, run.Started, run.Outcome.ToString(), run, cancellationToken);

    public Task<IReadOnlyList<JobRunRecord>> RecentAsync(string job, int count, CancellationToken cancellationToken) =>
        _history.RecentAsync<JobRunRecord>(job, count, cancellationToken);
}
