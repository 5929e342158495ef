using CloudSpool.Core.Health;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Tests;

public sealed class JobHealthEvaluatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(30);

    /// <summary>Every five minutes on the minute.</summary>
    private static DateTimeOffset? EveryFiveMinutes(DateTimeOffset after)
    {
        var next = new DateTimeOffset(after.Year, after.Month, after.Day, after.Hour, after.Minute / 5 * 5, 0, TimeSpan.Zero).AddMinutes(5);
        return next;
    }

    private static LastJobRun Run(DateTimeOffset started, RunOutcome outcome = RunOutcome.Succeeded, string? error = null) =>
        new(started, started.AddSeconds(3), outcome, error);

    [Fact]
    public void A_job_that_ran_at_its_last_fire_is_ok_and_one_whose_last_run_failed_is_failing()
    {
        var ok = JobHealthEvaluator.Evaluate(true, Run(Now.AddMinutes(-4)), EveryFiveMinutes, Now, Grace);
        Assert.Equal(JobHealthState.Ok, ok.State);
        Assert.Null(ok.DueSince);

        // A skipped run (backoff, another worker holds the job) is a fire too.
        Assert.Equal(JobHealthState.Ok, JobHealthEvaluator.Evaluate(true, Run(Now.AddMinutes(-4), RunOutcome.Skipped), EveryFiveMinutes, Now, Grace).State);

        var failing = JobHealthEvaluator.Evaluate(true, Run(Now.AddMinutes(-4), RunOutcome.Failed, "relay refused"), EveryFiveMinutes, Now, Grace);
        Assert.Equal(JobHealthState.Failing, failing.State);
        Assert.Contains("relay refused", failing.Reason);
    }

    [Fact]
    public void A_job_whose_trigger_stopped_firing_is_overdue_once_the_grace_has_passed()
    {
        // Last run 11:25: the next fire was 11:30; at 12:00 that is exactly the grace, not yet past it.
        Assert.Equal(JobHealthState.Ok, JobHealthEvaluator.Evaluate(true, Run(Now.AddMinutes(-35)), EveryFiveMinutes, Now, Grace).State);

        var stuck = JobHealthEvaluator.Evaluate(true, Run(Now.AddMinutes(-36)), EveryFiveMinutes, Now, Grace);
        Assert.Equal(JobHealthState.Overdue, stuck.State);
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 11, 25, 0, TimeSpan.Zero), stuck.DueSince);
        Assert.Contains("no run recorded since 2026-11-28 11:24:00Z", stuck.Reason);

        // Overdue wins over a failed last run: the silence is the bigger problem.
        Assert.Equal(JobHealthState.Overdue, JobHealthEvaluator.Evaluate(true, Run(Now.AddDays(-2), RunOutcome.Failed, "x"), EveryFiveMinutes, Now, Grace).State);
    }

    [Fact]
    public void Disabled_and_never_run_jobs_are_said_so_and_a_schedule_that_never_fires_again_is_not_overdue()
    {
        Assert.Equal(JobHealthState.Disabled, JobHealthEvaluator.Evaluate(false, Run(Now.AddDays(-9)), EveryFiveMinutes, Now, Grace).State);
        Assert.Equal(JobHealthState.NeverRun, JobHealthEvaluator.Evaluate(true, null, EveryFiveMinutes, Now, Grace).State);
        Assert.Equal(JobHealthState.Ok, JobHealthEvaluator.Evaluate(true, Run(Now.AddDays(-9)), _ => null, Now, Grace).State);
    }
}
