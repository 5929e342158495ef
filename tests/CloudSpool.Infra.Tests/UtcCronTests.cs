using System.Globalization;
using CloudSpool.Core.Scheduling;
using Quartz;

namespace CloudSpool.Infra.Tests;

/// <summary>
/// Quartz schedules (seconds, '?', a time zone each) turned into the 5-field UTC cron of Container Apps Jobs: exactly, or
/// refused with the reason naming the job. Every conversion is checked against Quartz itself: both fire at the same
/// instants over two months that cross a month and a year end.
/// </summary>
public sealed class UtcCronTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset From = new(2026, 12, 20, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset To = From.AddDays(62);

    [Theory]
    [InlineData("0 */5 * * * ?", "UTC", "*/5 * * * *")]
    [InlineData("0 30 3 * * ?", "UTC", "30 3 * * *")]
    [InlineData("0 15,45 * * * ?", "UTC", "15,45 * * * *")]
    [InlineData("0 0 9-17 ? * 2-6", "UTC", "0 9-17 * * 1-5")]
    [InlineData("0 0 12 ? * SUN,SAT", "UTC", "0 12 * * 0,6")]
    [InlineData("0 0 12 ? * 1", "UTC", "0 12 * * 0")]
    [InlineData("0 0 12 * * ? *", "UTC", "0 12 * * *")]
    [InlineData("0 0/20 6 1,15 JAN-MAR ?", "UTC", "*/20 6 1,15 1-3 *")]
    [InlineData("0 0 22-2 * * ?", "UTC", "0 0-2,22,23 * * *")]
    // Asia/Tokyo is UTC+9 all year: the hour field moves 9 hours back.
    [InlineData("0 */2 * * * ?", "Asia/Tokyo", "*/2 * * * *")]
    [InlineData("0 0 9 * * ?", "Asia/Tokyo", "0 0 * * *")]
    [InlineData("0 0 */2 * * ?", "Asia/Tokyo", "0 1-23/2 * * *")]
    [InlineData("0 0 10 ? * MON-FRI", "Asia/Tokyo", "0 1 * * 1-5")]
    [InlineData("0 0 12 15 * ?", "Asia/Tokyo", "0 3 15 * *")]
    // Fire times that fall on the previous UTC day: fine when every day fires ...
    [InlineData("0 0 8 * * ?", "Asia/Tokyo", "0 23 * * *")]
    [InlineData("0 0 8,20 * * ?", "Asia/Tokyo", "0 11,23 * * *")]
    [InlineData("0 5 * * * ?", "Asia/Tokyo", "5 * * * *")]
    // ... and the day of week follows when all of them move: Mon-Fri 08:00 in Tokyo is Sun-Thu 23:00 UTC.
    [InlineData("0 0 8 ? * MON-FRI", "Asia/Tokyo", "0 23 * * 0-4")]
    [InlineData("0 0 1 ? * SUN", "Asia/Tokyo", "0 16 * * 6")]
    [InlineData("0 0 8 ? * 2,4,6", "Etc/GMT-9", "0 23 * * 0,2,4")]
    // America/Phoenix is UTC-7 all year: Friday 22:00 there is Saturday 05:00 UTC.
    [InlineData("0 0 22 ? * FRI", "America/Phoenix", "0 5 * * 6")]
    [InlineData("0 0 6,18 * * ?", "America/Phoenix", "0 1,13 * * *")]
    public void Converts_exactly(string quartz, string zone, string expected)
    {
        var result = UtcCron.Convert("pull:isp", quartz, zone, Now);
        Assert.True(result.Converted, result.Refusal);
        Assert.Equal(expected, result.Cron);
        Assert.Null(result.Refusal);
        Assert.Equal(QuartzFires(quartz, zone), StandardCronFires(result.Cron!));
    }

    [Theory]
    [InlineData("30 */5 * * * ?", "UTC", "seconds field '30' must be 0")]
    [InlineData("*/10 * * * * ?", "UTC", "seconds field '*/10' must be 0")]
    [InlineData("0 0 12 L * ?", "UTC", "'L' (last day) in the day-of-month field")]
    [InlineData("0 0 12 15W * ?", "UTC", "'W' (nearest weekday) in the day-of-month field")]
    [InlineData("0 0 12 LW * ?", "UTC", "'L' (last day)")]
    [InlineData("0 0 12 ? * 6#3", "UTC", "'#' (the n-th weekday of the month) in the day-of-week field")]
    [InlineData("0 0 12 ? * 6L", "UTC", "'L' (last day) in the day-of-week field")]
    [InlineData("0 0 12 * * ? 2030", "UTC", "the year field '2030'")]
    [InlineData("0 0 12 * *", "UTC", "6 or 7 fields")]
    [InlineData("0 0 12 * * ?", "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not a known time zone")]
    [InlineData("0 0 9 * * ?", "Asia/Kolkata", "+05:30 from UTC, not a whole number of hours")]
    // Shifted fire times that change the day while day fields are restricted.
    [InlineData("0 0 8,20 ? * MON", "Asia/Tokyo", "some of its hours fall on the previous or next day and others do not")]
    [InlineData("0 0 * ? * MON", "Asia/Tokyo", "some of its hours fall on the previous or next day and others do not")]
    [InlineData("0 0 8 1 * ?", "Asia/Tokyo", "fall on the previous day, and a restricted day-of-month cannot follow across month ends")]
    [InlineData("0 0 8 * JAN ?", "Asia/Tokyo", "fall on the previous day, and a restricted month cannot follow across month ends")]
    [InlineData("0 0 22 10 * ?", "America/Phoenix", "fall on the next day, and a restricted day-of-month")]
    public void Refuses_what_it_cannot_convert_exactly_and_says_why(string quartz, string zone, string reason)
    {
        var result = UtcCron.Convert("pull:isp", quartz, zone, Now);
        Assert.False(result.Converted);
        Assert.Null(result.Cron);
        Assert.StartsWith($"pull:isp: \"{quartz}\" ({zone}) cannot run as a UTC cron: ", result.Refusal, StringComparison.Ordinal);
        Assert.Contains(reason, result.Refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Europe/Berlin")]
    [InlineData("America/New_York")]
    [InlineData("Australia/Sydney")]
    public void Zones_with_daylight_saving_time_are_refused_naming_the_job(string zone)
    {
        var result = UtcCron.Convert("retention", "0 30 3 * * ?", zone, Now);
        Assert.False(result.Converted);
        Assert.StartsWith("retention: ", result.Refusal, StringComparison.Ordinal);
        Assert.Contains($"{zone} changes its UTC offset", result.Refusal, StringComparison.Ordinal);
        Assert.Contains("daylight saving time", result.Refusal, StringComparison.Ordinal);
        Assert.Contains("deploy the worker", result.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public void A_zone_is_judged_on_its_rules_from_now_on_not_its_history()
    {
        // Tokyo had daylight saving time from 1948 to 1951: that does not matter for a schedule deployed today.
        Assert.True(UtcCron.Convert("pull:isp", "0 0 8 * * ?", "Asia/Tokyo", Now).Converted);
        Assert.False(UtcCron.Convert("pull:isp", "0 0 8 * * ?", "Asia/Tokyo", new DateTimeOffset(1949, 1, 1, 0, 0, 0, TimeSpan.Zero)).Converted);
    }

    /// <summary>Every fire time of the Quartz expression in its zone within the test window.</summary>
    private static List<DateTimeOffset> QuartzFires(string quartz, string zone)
    {
        var cron = new CronExpression(quartz, TimeZoneInfo.FindSystemTimeZoneById(zone));
        var result = new List<DateTimeOffset>();
        for (var t = cron.GetNextValidTimeAfter(From.AddSeconds(-1)); t is { } fire && fire < To; t = cron.GetNextValidTimeAfter(fire))
            result.Add(fire.ToUniversalTime());
        return result;
    }

    /// <summary>
    /// Every minute of the test window a 5-field cron matches in UTC, by the usual rules (Vixie cron, Container Apps):
    /// day-of-month and day-of-week combine with "or" when both are restricted, else with "and".
    /// </summary>
    private static List<DateTimeOffset> StandardCronFires(string cron)
    {
        var f = cron.Split(' ');
        Assert.Equal(5, f.Length);
        var (minute, hour, dom, month, dow) = (Field(f[0], 0, 59), Field(f[1], 0, 23), Field(f[2], 1, 31), Field(f[3], 1, 12), Field(f[4], 0, 6));
        var result = new List<DateTimeOffset>();
        for (var t = From; t < To; t = t.AddMinutes(1))
        {
            var dayMatches = f[2] != "*" && f[4] != "*"
                ? dom.Contains(t.Day) || dow.Contains((int)t.DayOfWeek)
                : dom.Contains(t.Day) && dow.Contains((int)t.DayOfWeek);
            if (minute.Contains(t.Minute) && hour.Contains(t.Hour) && month.Contains(t.Month) && dayMatches)
                result.Add(t);
        }
        return result;
    }

    private static HashSet<int> Field(string text, int min, int max)
    {
        var values = new HashSet<int>();
        foreach (var part in text.Split(','))
        {
            var (range, step) = part.Split('/') is [var r, var s] ? (r, int.Parse(s, CultureInfo.InvariantCulture)) : (part, 1);
            var (from, to) = range == "*" ? (min, max)
                : range.Split('-') is [var a, var b] ? (int.Parse(a, CultureInfo.InvariantCulture), int.Parse(b, CultureInfo.InvariantCulture))
                : (int.Parse(range, CultureInfo.InvariantCulture), int.Parse(range, CultureInfo.InvariantCulture));
            Assert.InRange(from, min, max);
            Assert.InRange(to, from, max);
            for (var v = from; v <= to; v += step)
                values.Add(v);
        }
        return values;
    }
}
