using System.Globalization;

namespace CloudSpool.Core.Forward;

/// <summary>A weekly time window (days of the week, start and end time of day) in the forwarding time zone.</summary>
public sealed class ForwardWindow
{
    private static readonly string[] DayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

    private readonly bool[] _days;
    private readonly TimeSpan _start;
    private readonly TimeSpan _end;

    private ForwardWindow(bool[] days, TimeSpan start, TimeSpan end)
    {
        _days = days;
        _start = start;
        _end = end;
    }

    /// <summary>Parses a window; <paramref name="error"/> says what is wrong otherwise.</summary>
    public static bool TryParse(ForwardWindowOptions options, out ForwardWindow? window, out string? error)
    {
        window = null;
        var days = new bool[7];
        foreach (var part in (options.Days ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var range = part.Split('-', StringSplitOptions.TrimEntries);
            if (range.Length > 2 || !TryDay(range[0], out var first) || !TryDay(range[^1], out var last))
            {
                error = $"'{options.Days}' is not a list of days: expected e.g. Mon-Fri or Sat,Sun";
                return false;
            }
            for (var d = first; ; d = (d + 1) % 7)
            {
                days[d] = true;
                if (d == last)
                    break;
            }
        }
        if (!days.Any(d => d))
        {
            error = $"'{options.Days}' names no day: expected e.g. Mon-Fri or Sat,Sun";
            return false;
        }
        if (!TryTime(options.Start, out var start) || !TryTime(options.End, out var end) || start == end)
        {
            error = $"'{options.Start}'-'{options.End}' is not a time range: expected HH:mm times that differ, e.g. 09:00 and 18:00 (24:00 for midnight at the end)";
            return false;
        }
        window = new ForwardWindow(days, start, end);
        error = null;
        return true;
    }

    private static bool TryDay(string text, out int day)
    {
        day = Array.IndexOf(DayNames, text.Length >= 3 ? text[..3].ToLowerInvariant() : text.ToLowerInvariant());
        return day >= 0;
    }

    private static bool TryTime(string? text, out TimeSpan time)
    {
        if (text == "24:00")
        {
            time = TimeSpan.FromHours(24);
            return true;
        }
        return TimeSpan.TryParseExact(text, @"hh\:mm", CultureInfo.InvariantCulture, out time);
    }

    /// <summary>Whether <paramref name="local"/> (a time in the window's zone) is inside the window.</summary>
    public bool Contains(DateTime local)
    {
        var day = (int)local.DayOfWeek;
        var time = local.TimeOfDay;
        if (_start < _end)
            return _days[day] && time >= _start && time < _end;
        // Past midnight: the evening part belongs to the start day, the morning part to the day before.
        return (_days[day] && time >= _start) || (_days[(day + 6) % 7] && time < _end);
    }

    /// <summary>True when no window is configured or <paramref name="now"/> falls in one of them.</summary>
    public static bool AnyContains(IReadOnlyList<ForwardWindow> windows, DateTimeOffset now, TimeZoneInfo zone) =>
        windows.Count == 0 || windows.Any(w => w.Contains(TimeZoneInfo.ConvertTime(now, zone).DateTime));
}
