using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Retention;

/// <summary>The outcome of one run of a job other than pull (retention, later forward and health).</summary>
public sealed record JobRunRecord(string Job, DateTimeOffset Started, DateTimeOffset Finished, RunOutcome Outcome, string Summary, string? Error);

/// <summary>History of job runs (latest first), so every run's outcome is recorded.</summary>
public interface IJobRunLog
{
    Task AppendAsync(JobRunRecord run, CancellationToken cancellationToken);
    Task<IReadOnlyList<JobRunRecord>> RecentAsync(string job, int count, CancellationToken cancellationToken);
}

/// <summary>Recording job runs the same way for every job.</summary>
public static class JobRunLogExtensions
{
    /// <summary>
    /// Appends a run (bounded by its own timeout, so a run cancelled by shutdown still records) and counts it in
    /// <see cref="Telemetry.CloudSpoolMetrics"/>.
    /// </summary>
    public static async Task<JobRunRecord> RecordAsync(this IJobRunLog runs, JobRunRecord record)
    {
        ArgumentNullException.ThrowIfNull(runs);
        ArgumentNullException.ThrowIfNull(record);
        Telemetry.CloudSpoolMetrics.RecordJobRun(record);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await runs.AppendAsync(record, timeout.Token).ConfigureAwait(false);
        return record;
    }
}
