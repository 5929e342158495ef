using System.Diagnostics.Metrics;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Telemetry;

/// <summary>
/// CloudSpool's metrics, on the .NET <see cref="Meter"/> API (no exporter here): the host exports them through
/// OpenTelemetry when configured, and any <see cref="MeterListener"/> can read them. Names follow OpenTelemetry's
/// conventions (dot-separated, units in the instrument, low-cardinality tags: account, job, outcome).
/// </summary>
public static class CloudSpoolMetrics
{
    /// <summary>The meter's name, for exporters to subscribe to.</summary>
    public const string MeterName = "CloudSpool";

    private static readonly Meter Meter = new(MeterName, typeof(CloudSpoolMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> PullRuns = Meter.CreateCounter<long>("cloudspool.pull.runs", "{run}", "Pull runs per account and outcome (succeeded, failed, skipped).");
    private static readonly Counter<long> PullMessages = Meter.CreateCounter<long>("cloudspool.pull.messages", "{message}", "New messages stored in the spool by pull runs.");
    private static readonly Counter<long> PullBytes = Meter.CreateCounter<long>("cloudspool.pull.bytes", "By", "Bytes fetched from upstream by pull runs.");
    private static readonly Counter<long> PullFailedMessages = Meter.CreateCounter<long>("cloudspool.pull.message_failures", "{message}", "Messages a pull run could not fetch or store (retried by later runs).");
    private static readonly Histogram<double> PullDuration = Meter.CreateHistogram<double>("cloudspool.pull.duration", "s", "How long pull runs took.");
    private static readonly Counter<long> JobRuns = Meter.CreateCounter<long>("cloudspool.job.runs", "{run}", "Runs of the retention, health and forward jobs per outcome.");
    private static readonly Histogram<double> JobDuration = Meter.CreateHistogram<double>("cloudspool.job.duration", "s", "How long retention, health and forward runs took.");
    private static readonly Counter<long> Forwards = Meter.CreateCounter<long>("cloudspool.forward.messages", "{message}", "Forward decisions per destination state (sent, skipped, refused, waiting).");

    /// <summary>Counts a pull run once its record is final.</summary>
    public static void RecordPullRun(PullRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var account = new KeyValuePair<string, object?>("account", run.Account);
        var outcome = new KeyValuePair<string, object?>("outcome", Outcome(run.Outcome));
        PullRuns.Add(1, account, outcome);
        if (run.Outcome == RunOutcome.Skipped)
            return;
        PullDuration.Record((run.Finished - run.Started).TotalSeconds, account, outcome);
        if (run.Stored > 0)
            PullMessages.Add(run.Stored, account);
        if (run.Bytes > 0)
            PullBytes.Add(run.Bytes, account);
        if (run.FailedMessages > 0)
            PullFailedMessages.Add(run.FailedMessages, account);
    }

    /// <summary>Counts a run of a job other than pull.</summary>
    public static void RecordJobRun(JobRunRecord run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var job = new KeyValuePair<string, object?>("job", run.Job);
        var outcome = new KeyValuePair<string, object?>("outcome", Outcome(run.Outcome));
        JobRuns.Add(1, job, outcome);
        if (run.Outcome != RunOutcome.Skipped)
            JobDuration.Record((run.Finished - run.Started).TotalSeconds, job, outcome);
    }

    /// <summary>Counts forward decisions of one run by what became of them.</summary>
    public static void RecordForwards(int sent, int skipped, int refused, int waiting)
    {
        Add(Forwards, sent, "sent");
        Add(Forwards, skipped, "skipped");
        Add(Forwards, refused, "refused");
        Add(Forwards, waiting, "waiting");
    }

    private static void Add(Counter<long> counter, int value, string state)
    {
        if (value > 0)
            counter.Add(value, new KeyValuePair<string, object?>("state", state));
    }

    private static string Outcome(RunOutcome outcome) => outcome switch
    {
        RunOutcome.Succeeded => "succeeded",
        RunOutcome.Failed => "failed",
        _ => "skipped",
    };
}
