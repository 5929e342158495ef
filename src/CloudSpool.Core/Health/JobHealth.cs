using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Health;

/// <summary>A scheduled job's health in one word (`schedule list`, `status`).</summary>
public enum JobHealthState
{
    /// <summary>It ran when its schedule said, and its last run did not fail.</summary>
    Ok,

    /// <summary>It runs on time, but its last run failed.</summary>
    Failing,

    /// <summary>
    /// Its schedule says it should have run (a while ago) and no run was recorded since: no worker is running, or its
    /// scheduler or trigger is stuck, errored or blocked. Every fire records a run, even one skipped for backoff or
    /// because another worker holds the job, so silence means the trigger stopped firing.
    /// </summary>
    Overdue,

    /// <summary>Not scheduled (an account switched off, retention or forwarding not configured).</summary>
    Disabled,

    /// <summary>No run recorded yet.</summary>
    NeverRun,
}

/// <summary>The last recorded run of a job, as far as its health needs it.</summary>
public sealed record LastJobRun(DateTimeOffset Started, DateTimeOffset Finished, RunOutcome Outcome, string? Error);

/// <summary>A job's health.</summary>
/// <param name="State">In one word.</param>
/// <param name="DueSince">When it should have run (overdue only).</param>
/// <param name="Reason">The state in plain words.</param>
public sealed record JobHealth(JobHealthState State, DateTimeOffset? DueSince, string Reason);

/// <summary>Tells whether a scheduled job still fires, from its schedule and its last recorded run: pure.</summary>
public static class JobHealthEvaluator
{
    /// <param name="enabled">Whether the job is scheduled at all.</param>
    /// <param name="last">Its last recorded run; null when none.</param>
    /// <param name="nextFireAfter">The schedule: the first fire time after an instant (null when it never fires again).</param>
    /// <param name="now">The time of the evaluation.</param>
    /// <param name="grace">How late a run may be recorded after its fire time (misfires, a long run) before the job is overdue.</param>
    public static JobHealth Evaluate(bool enabled, LastJobRun? last, Func<DateTimeOffset, DateTimeOffset?> nextFireAfter, DateTimeOffset now, TimeSpan grace)
    {
        ArgumentNullException.ThrowIfNull(nextFireAfter);
        if (!enabled)
            return new JobHealth(JobHealthState.Disabled, null, "not scheduled");
        if (last is null)
            return new JobHealth(JobHealthState.NeverRun, null, "no run recorded yet");
        if (nextFireAfter(last.Started) is { } due && now - due > grace)
        {
            return new JobHealth(JobHealthState.Overdue, due,
                $"should have run at {due:u}; no run recorded since {last.Started:u}: is a worker running, or is its scheduler stuck?");
        }
        if (last.Outcome == RunOutcome.Failed)
            return new JobHealth(JobHealthState.Failing, null, $"last run {last.Started:u} failed: {last.Error}");
        return new JobHealth(JobHealthState.Ok, null, $"last run {last.Started:u} {last.Outcome.ToString().ToLowerInvariant()}");
    }
}
