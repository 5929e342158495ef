using System.Globalization;

namespace CloudSpool.Core.Import;

/// <summary>A polling interval in seconds (fetchmail <c>set daemon N</c>) as a Quartz cron schedule.</summary>
public static class DaemonSchedule
{
    /// <summary>
    /// The cron that fires every <paramref name="seconds"/>, or the nearest one that divides the minute, hour or day
    /// (cron steps restart at each of them); <paramref name="exact"/> says whether it is the same interval.
    /// </summary>
    public static string ToCron(long seconds, out bool exact)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(seconds, 1);
        static int Nearest(long value, int[] divisors) => divisors.MinBy(d => Math.Abs(d - value));
        string cron;
        long actual;
        if (seconds < 60)
        {
            var s = Nearest(seconds, [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30]);
            (cron, actual) = ($"*/{s} * * * * ?", s);
        }
        else if (seconds < 3600)
        {
            var m = Nearest((long)Math.Round(seconds / 60.0), [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30]);
            (cron, actual) = (m == 1 ? "0 * * * * ?" : $"0 */{m} * * * ?", m * 60L);
        }
        else
        {
            var h = Nearest((long)Math.Round(seconds / 3600.0), [1, 2, 3, 4, 6, 8, 12, 24]);
            (cron, actual) = (h == 24 ? "0 0 0 * * ?" : h == 1 ? "0 0 * * * ?" : $"0 0 */{h} * * ?", h * 3600L);
        }
        exact = actual == seconds;
        return cron.ToString(CultureInfo.InvariantCulture);
    }
}
