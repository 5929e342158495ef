using System.Globalization;
using System.Text;

namespace CloudSpool.Core.Scheduling;

/// <summary>
/// A Quartz schedule turned into a standard 5-field cron evaluated in UTC (what Azure Container Apps Jobs and
/// Kubernetes CronJobs run), or the reason it cannot be turned into one exactly.
/// </summary>
/// <param name="Job">The job, e.g. <c>pull:isp</c>.</param>
/// <param name="Cron">The 5-field UTC expression (minute hour day-of-month month day-of-week), null when refused.</param>
/// <param name="Refusal">Why no UTC expression fires at exactly the same instants, naming the job; null when converted.</param>
public sealed record UtcCronResult(string Job, string? Cron, string? Refusal)
{
    public bool Converted => Cron is not null;
}

/// <summary>
/// Converts Quartz cron expressions (seconds field, '?', a time zone per schedule) to 5-field UTC cron, exactly or not
/// at all: an expression is never silently changed. What converts: seconds exactly 0, no year restriction, no L/W/#,
/// a zone whose UTC offset is a whole number of hours and does not change (UTC, Asia/Tokyo; not Europe/Berlin, which
/// has daylight saving time). The offset shifts the hour field; when that moves some fire times to another day,
/// restricted day fields follow only when every fire time moves the same way and only the day of week is restricted
/// (Mon-Fri 08:00 in Tokyo is Sun-Thu 23:00 UTC); anything else is refused.
/// </summary>
public static class UtcCron
{
    private static readonly string[] DayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    private static readonly string[] MonthNames = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];

    /// <summary>How far ahead the zone's offset must stay the same (a year covers every daylight-saving rule).</summary>
    private static readonly TimeSpan OffsetHorizon = TimeSpan.FromDays(400);

    /// <summary>Converts <paramref name="quartz"/> in <paramref name="timeZone"/> as of <paramref name="now"/>.</summary>
    public static UtcCronResult Convert(string job, string quartz, string timeZone, DateTimeOffset now)
    {
        try
        {
            return new UtcCronResult(job, ConvertOrThrow(quartz, timeZone, now), null);
        }
        catch (RefusedException ex)
        {
            return new UtcCronResult(job, null, $"{job}: \"{quartz}\" ({timeZone}) cannot run as a UTC cron: {ex.Message}");
        }
    }

    private static string ConvertOrThrow(string quartz, string timeZone, DateTimeOffset now)
    {
        var fields = quartz.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (fields.Length is not (6 or 7))
            throw new RefusedException($"a Quartz expression has 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), this one has {fields.Length}");
        if (fields.Length == 7 && fields[6] != "*")
            throw new RefusedException($"the year field '{fields[6]}' has no equivalent in a 5-field cron");

        var seconds = Expand(fields[0], "seconds", 0, 59, null);
        if (seconds.Count != 1 || !seconds.Contains(0))
            throw new RefusedException($"the seconds field '{fields[0]}' must be 0: a 5-field cron fires only at whole minutes");
        var minutes = Expand(fields[1], "minutes", 0, 59, null);
        var hours = Expand(fields[2], "hours", 0, 23, null);
        var domAny = IsAny(fields[3]);
        var dowAny = IsAny(fields[5]);
        if (!domAny && !dowAny)
            throw new RefusedException("both day-of-month and day-of-week are restricted (Quartz needs '?' in one of them)");
        var dom = domAny ? Full(1, 31) : Expand(fields[3], "day-of-month", 1, 31, null);
        var months = Expand(fields[4], "month", 1, 12, MonthNames);
        // Quartz numbers days 1-7 from Sunday; 5-field cron 0-6 from Sunday.
        var dow = dowAny ? Full(0, 6) : Expand(fields[5], "day-of-week", 1, 7, DayNames).Select(d => d - 1).ToHashSet();

        var offset = FixedOffset(timeZone, now);
        if (offset.Ticks % TimeSpan.TicksPerHour != 0)
            throw new RefusedException($"{timeZone} is {Format(offset)} from UTC, not a whole number of hours, so the minute field would have to change too");
        var shift = (int)-offset.TotalHours;

        // UTC hour of each local hour, and the day it falls on relative to the local day (-1, 0, +1).
        var utcHours = new HashSet<int>();
        var dayMoves = new HashSet<int>();
        foreach (var h in hours)
        {
            var u = h + shift;
            dayMoves.Add(u < 0 ? -1 : u > 23 ? 1 : 0);
            utcHours.Add(((u % 24) + 24) % 24);
        }

        var daysRestricted = !domAny || !dowAny || months.Count < 12;
        if (daysRestricted && dayMoves.Count > 1)
            throw new RefusedException($"in UTC ({Format(offset)}) some of its hours fall on the previous or next day and others do not, and its day or month fields are restricted; one 5-field cron cannot say that");
        // With unrestricted day fields any mix of moves is fine: every day fires.
        if (daysRestricted && dayMoves.Single() is var move and not 0)
        {
            if (!domAny)
                throw new RefusedException($"in UTC ({Format(offset)}) its fire times fall on the {(move < 0 ? "previous" : "next")} day, and a restricted day-of-month cannot follow across month ends");
            if (months.Count < 12)
                throw new RefusedException($"in UTC ({Format(offset)}) its fire times fall on the {(move < 0 ? "previous" : "next")} day, and a restricted month cannot follow across month ends");
            dow = dow.Select(d => (((d + move) % 7) + 7) % 7).ToHashSet();
        }

        return string.Join(' ',
            Render(minutes, 0, 59),
            Render(utcHours, 0, 23),
            domAny ? "*" : Render(dom, 1, 31),
            Render(months, 1, 12),
            dowAny ? "*" : Render(dow, 0, 6));
    }

    /// <summary>The zone's UTC offset when it is the same from now on (sampled every 6 hours over a year); refused otherwise.</summary>
    private static TimeSpan FixedOffset(string timeZone, DateTimeOffset now)
    {
        if (!TimeZoneInfo.TryFindSystemTimeZoneById(timeZone, out var zone))
            throw new RefusedException($"'{timeZone}' is not a known time zone");
        var first = zone.GetUtcOffset(now);
        for (var t = now; t < now + OffsetHorizon; t += TimeSpan.FromHours(6))
        {
            var other = zone.GetUtcOffset(t);
            if (other != first)
                throw new RefusedException(
                    $"{timeZone} changes its UTC offset ({Format(first)} and {Format(other)} within a year: daylight saving time), and a UTC cron would fire an hour off for part of the year; "
                    + "use a zone without daylight saving time (or UTC) for this job, or deploy the worker instead of jobs");
        }
        return first;
    }

    private static bool IsAny(string field) => field is "?" or "*";

    private static HashSet<int> Full(int min, int max) => Enumerable.Range(min, max - min + 1).ToHashSet();

    /// <summary>Every value a field allows: lists, ranges (wrapping ones too), steps, names; refuses L, W and #.</summary>
    private static HashSet<int> Expand(string field, string name, int min, int max, string[]? names)
    {
        var result = new HashSet<int>();
        foreach (var raw in field.Split(','))
        {
            var part = raw.ToUpperInvariant();
            if (part.Contains('#', StringComparison.Ordinal))
                throw new RefusedException($"'#' (the n-th weekday of the month) in the {name} field has no 5-field cron equivalent");
            var step = 1;
            var slash = part.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0)
            {
                step = Number(part[(slash + 1)..], name, 1, max - min + 1, null);
                part = part[..slash];
            }
            int from, to;
            if (part is "*" or "?")
                (from, to) = (min, max);
            else if (part.IndexOf('-', StringComparison.Ordinal) is var dash and > 0)
                (from, to) = (Number(part[..dash], name, min, max, names), Number(part[(dash + 1)..], name, min, max, names));
            else
                (from, to) = (Number(part, name, min, max, names), slash >= 0 ? max : -1);
            if (to < 0)
                to = from;
            // A range like 22-2 wraps around the end of the field (Quartz accepts it).
            var count = (to >= from ? to - from : to + (max - min + 1) - from) + 1;
            for (var i = 0; i < count; i += step)
                result.Add(min + ((from - min + i) % (max - min + 1)));
        }
        return result;
    }

    private static int Number(string text, string name, int min, int max, string[]? names)
    {
        if (names is not null && Array.IndexOf(names, text) is var index and >= 0)
            return index + min;
        if (text.Contains('L', StringComparison.Ordinal))
            throw new RefusedException($"'L' (last day) in the {name} field has no 5-field cron equivalent");
        if (text.Contains('W', StringComparison.Ordinal))
            throw new RefusedException($"'W' (nearest weekday) in the {name} field has no 5-field cron equivalent");
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            throw new RefusedException($"'{text}' is not a value of the {name} field ({min}-{max})");
        return value;
    }

    /// <summary>The shortest usual spelling of a set: *, */n, a-b/n, or a list of values and ranges.</summary>
    private static string Render(HashSet<int> values, int min, int max)
    {
        var sorted = values.Order().ToList();
        if (sorted.Count == max - min + 1)
            return "*";
        if (sorted.Count > 1)
        {
            var step = sorted[1] - sorted[0];
            var progression = sorted.Zip(sorted.Skip(1), (a, b) => b - a).All(d => d == step);
            // Steps count from the start of the range up to the field's end, so only a progression that runs to
            // within one step of the end can be written with a step.
            if (progression && step > 1 && sorted[^1] + step > max && sorted.Count > 2)
                return sorted[0] == min ? $"*/{step}" : $"{sorted[0]}-{max}/{step}";
        }
        var text = new StringBuilder();
        for (var i = 0; i < sorted.Count;)
        {
            var j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1)
                j++;
            if (text.Length > 0)
                text.Append(',');
            text.Append(CultureInfo.InvariantCulture, $"{sorted[i]}");
            if (j > i)
                text.Append(j == i + 1 ? ',' : '-').Append(CultureInfo.InvariantCulture, $"{sorted[j]}");
            i = j + 1;
        }
        return text.ToString();
    }

    private static string Format(TimeSpan offset) => (offset < TimeSpan.Zero ? "-" : "+") + offset.ToString(@"hh\:mm", CultureInfo.InvariantCulture);

    private sealed class RefusedException(string message) : Exception(message);
}
