using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Tests.Pull;

/// <summary>How a run's record changes an account's pull state, and the backoff after failures.</summary>
public sealed class PullStateFoldTests
{
    private static readonly DateTimeOffset Noon = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    private static PullRunRecord Run(RunOutcome outcome, DateTimeOffset finished, int stored = 0, long bytes = 0, string? error = null) => new()
    {
        Account = "a",
        Started = finished.AddMinutes(-1),
        Finished = finished,
        Outcome = outcome,
        Stored = stored,
        Bytes = bytes,
        Error = error,
        ErrorKind = error is null ? null : UpstreamErrorKind.Connect,
    };

    [Fact]
    public void Failures_extend_the_streak_and_a_success_clears_it()
    {
        var state = new AccountPullState { Account = "a" };
        state = state.After(Run(RunOutcome.Failed, Noon, error: "refused"), null, TimeZoneInfo.Utc, TimeSpan.FromMinutes(1));
        state = state.After(Run(RunOutcome.Failed, Noon.AddMinutes(5), error: "refused again"), null, TimeZoneInfo.Utc, TimeSpan.FromMinutes(2));
        Assert.Equal(2, state.FailureStreak);
        Assert.Equal("refused again", state.LastError);
        Assert.Equal(Noon.AddMinutes(7), state.NextAttemptAfter);
        Assert.Null(state.LastSuccess);

        state = state.After(Run(RunOutcome.Succeeded, Noon.AddMinutes(10), stored: 3, bytes: 300), new UpstreamMailboxStatus(7, 700), TimeZoneInfo.Utc, TimeSpan.FromHours(1));
        Assert.Equal(0, state.FailureStreak);
        Assert.Null(state.NextAttemptAfter);
        Assert.Equal(Noon.AddMinutes(10), state.LastSuccess);
        Assert.Equal(Noon.AddMinutes(10), state.LastNewMail);
        Assert.Equal((7, 700L), (state.UpstreamMessages, state.UpstreamBytes));
    }

    [Fact]
    public void Today_counts_in_the_configured_zone_and_a_new_day_starts_from_zero()
    {
        // 23:30 UTC is already the next day at UTC+1.
        var zone = TimeZoneInfo.CreateCustomTimeZone("plus-one", TimeSpan.FromHours(1), "plus-one", "plus-one");
        var lateEvening = new DateTimeOffset(2026, 12, 5, 22, 30, 0, TimeSpan.Zero);
        var state = new AccountPullState { Account = "a" }
            .After(Run(RunOutcome.Succeeded, lateEvening, stored: 2, bytes: 20), null, zone, TimeSpan.Zero)
            .After(Run(RunOutcome.Succeeded, lateEvening.AddMinutes(20), stored: 1, bytes: 10), null, zone, TimeSpan.Zero);
        Assert.Equal((new DateOnly(2026, 12, 5), 3, 30L), (state.Today, state.TodayMessages, state.TodayBytes));

        state = state.After(Run(RunOutcome.Succeeded, lateEvening.AddMinutes(40), stored: 5, bytes: 50), null, zone, TimeSpan.Zero);
        Assert.Equal((new DateOnly(2026, 12, 6), 5, 50L), (state.Today, state.TodayMessages, state.TodayBytes));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(4, 8)]
    [InlineData(7, 60)]
    [InlineData(1000, 60)]
    public void Backoff_doubles_up_to_its_cap(int streak, int minutes) =>
        Assert.Equal(TimeSpan.FromMinutes(minutes), PullStateFold.Backoff(streak, TimeSpan.FromMinutes(1), TimeSpan.FromHours(1)));
}
