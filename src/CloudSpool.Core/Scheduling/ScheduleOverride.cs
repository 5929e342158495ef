namespace CloudSpool.Core.Scheduling;

/// <summary>
/// A schedule edited at runtime (`cloudspool schedule set`). It wins over the account's and the
/// configured default schedule until it is reset; every running host applies it within its refresh interval.
/// </summary>
/// <param name="Job">The job it applies to, e.g. <c>pull:isp</c>.</param>
/// <param name="Cron">Quartz cron expression (with a seconds field).</param>
/// <param name="TimeZone">IANA or Windows time zone id.</param>
/// <param name="UpdatedAt">When it was set.</param>
public sealed record ScheduleOverride(string Job, string Cron, string TimeZone, DateTimeOffset UpdatedAt);

/// <summary>Where schedule edits live (control state in storage, shared by every host).</summary>
public interface IScheduleStore
{
    Task<IReadOnlyDictionary<string, ScheduleOverride>> ListAsync(CancellationToken cancellationToken);
    Task SetAsync(ScheduleOverride schedule, CancellationToken cancellationToken);

    /// <summary>Removes the edit; false when there was none.</summary>
    Task<bool> ResetAsync(string job, CancellationToken cancellationToken);
}
