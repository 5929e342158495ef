namespace CloudSpool.Host.Scheduling;

/// <summary>Where a schedule in effect comes from.</summary>
public enum ScheduleSource
{
    /// <summary>Pull:DefaultSchedule from the configuration.</summary>
    Default,

    /// <summary>The account's own --schedule.</summary>
    Account,

    /// <summary>An edit made with `cloudspool schedule set`, until `schedule reset`.</summary>
    Edited,
}

/// <summary>The schedule a job runs on, and where it comes from.</summary>
public sealed record EffectiveSchedule(string Job, string Cron, string TimeZone, ScheduleSource Source);
