using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>Quartz cron checks shared by the config validator, the account validator and the scheduler.</summary>
public static class Cron
{
    /// <summary>True when the text parses as a Quartz cron expression and fires at least once in the future.</summary>
    public static bool IsValid(string? expression) =>
        !string.IsNullOrWhiteSpace(expression)
        && CronExpression.TryParse(expression, out var cron)
        && cron!.GetNextValidTimeAfter(DateTimeOffset.UtcNow) is not null;

    /// <summary>The next fire time after <paramref name="after"/>, or null when the expression never fires again.</summary>
    public static DateTimeOffset? NextFire(string expression, string timeZone, DateTimeOffset after) =>
        new CronExpression(expression, TimeZoneInfo.FindSystemTimeZoneById(timeZone)).GetNextValidTimeAfter(after);
}
