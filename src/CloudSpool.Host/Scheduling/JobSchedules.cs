using CloudSpool.Core.Accounts;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Health;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Scheduling;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Scheduling;

/// <summary>
/// The schedule each job runs on. An edit made with `schedule set` wins over everything else; then an account's own
/// schedule; then the configuration. A job without a time zone of its own runs in Pull:TimeZone.
/// </summary>
public static class JobSchedules
{
    /// <summary>An account's pull job: an edit, then the account's own schedule, then Pull:DefaultSchedule.</summary>
    public static EffectiveSchedule Pull(CloudSpoolOptions options, AccountDefinition account, IReadOnlyDictionary<string, ScheduleOverride>? edits = null)
    {
        var job = JobNames.Pull(account.Name);
        if (Edited(job, edits) is { } edited)
            return edited;
        if (account.Schedule is not null)
            return new EffectiveSchedule(job, account.Schedule, account.TimeZone ?? options.Pull.TimeZone, ScheduleSource.Account);
        return new EffectiveSchedule(job, options.Pull.DefaultSchedule, account.TimeZone ?? options.Pull.TimeZone, ScheduleSource.Default);
    }

    /// <summary>The health job: an edit, then the Health section.</summary>
    public static EffectiveSchedule Health(CloudSpoolOptions options, IReadOnlyDictionary<string, ScheduleOverride>? edits = null) =>
        Edited(HealthRunner.Job, edits) ?? Configured(options, HealthRunner.Job, options.Health.Schedule, options.Health.TimeZone);

    /// <summary>The retention job: an edit, then the Retention section.</summary>
    public static EffectiveSchedule Retention(CloudSpoolOptions options, IReadOnlyDictionary<string, ScheduleOverride>? edits = null) =>
        Edited(RetentionRunner.Job, edits) ?? Configured(options, RetentionRunner.Job, options.Retention.Schedule, options.Retention.TimeZone);

    /// <summary>The forward job: an edit, then the Forward section.</summary>
    public static EffectiveSchedule Forward(CloudSpoolOptions options, IReadOnlyDictionary<string, ScheduleOverride>? edits = null) =>
        Edited(ForwardRunner.Job, edits) ?? Configured(options, ForwardRunner.Job, options.Forward.Schedule, options.Forward.TimeZone);

    private static EffectiveSchedule? Edited(string job, IReadOnlyDictionary<string, ScheduleOverride>? edits) =>
        edits is not null && edits.TryGetValue(job, out var edit)
            ? new EffectiveSchedule(job, edit.Cron, edit.TimeZone, ScheduleSource.Edited)
            : null;

    private static EffectiveSchedule Configured(CloudSpoolOptions options, string job, string cron, string? timeZone) =>
        new(job, cron, timeZone ?? options.Pull.TimeZone, ScheduleSource.Default);
}
