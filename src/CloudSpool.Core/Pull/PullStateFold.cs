using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Pull;

/// <summary>How a run's record changes an account's pull state: pure functions of their arguments.</summary>
public static class PullStateFold
{
    /// <summary>
    /// The state after <paramref name="record"/>. A success clears the failure streak and takes the upstream figures the
    /// server reported; a failure extends the streak and sets the next attempt <paramref name="backoff"/> after the run.
    /// What was pulled today counts in <paramref name="dayZone"/>: a new day starts from zero.
    /// </summary>
    public static AccountPullState After(this AccountPullState state, PullRunRecord record, UpstreamMailboxStatus? upstream, TimeZoneInfo dayZone, TimeSpan backoff)
    {
        var day = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(record.Finished, dayZone).DateTime);
        var sameDay = state.Today == day;
        state = state with
        {
            Today = day,
            TodayMessages = (sameDay ? state.TodayMessages : 0) + record.Stored,
            TodayBytes = (sameDay ? state.TodayBytes : 0) + record.Bytes,
        };
        if (record.Outcome == RunOutcome.Succeeded)
        {
            return state with
            {
                LastAttempt = record.Started,
                LastSuccess = record.Finished,
                LastNewMail = record.Stored > 0 ? record.Finished : state.LastNewMail,
                FailureStreak = 0,
                NextAttemptAfter = null,
                LastRunMessages = record.Stored,
                LastRunBytes = record.Bytes,
                UpstreamMessages = upstream?.Messages ?? state.UpstreamMessages,
                UpstreamBytes = upstream?.Bytes ?? state.UpstreamBytes,
                UpstreamQuotaBytes = upstream is null ? state.UpstreamQuotaBytes : upstream.QuotaLimitBytes,
                UpstreamQuotaUsedBytes = upstream is null ? state.UpstreamQuotaUsedBytes : upstream.QuotaUsedBytes,
                UpstreamLeftFlaggedDeleted = upstream?.LeftFlaggedDeleted ?? state.UpstreamLeftFlaggedDeleted,
            };
        }
        return state with
        {
            LastAttempt = record.Started,
            FailureStreak = state.FailureStreak + 1,
            LastError = record.Error,
            LastErrorKind = record.ErrorKind,
            NextAttemptAfter = record.Finished + backoff,
            LastRunMessages = record.Stored,
            LastRunBytes = record.Bytes,
        };
    }

    /// <summary>Capped exponential backoff after <paramref name="streak"/> failures in a row: base, 2×base, 4×base, … up to the cap.</summary>
    public static TimeSpan Backoff(int streak, TimeSpan baseBackoff, TimeSpan maxBackoff)
    {
        var factor = Math.Pow(2, Math.Min(streak - 1, 30));
        var ticks = Math.Min(baseBackoff.Ticks * factor, maxBackoff.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }
}
