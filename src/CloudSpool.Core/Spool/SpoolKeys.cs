using System.Globalization;

namespace CloudSpool.Core.Spool;

/// <summary>
/// Message keys of a mailbox: <c>m:{commit ticks:D19}-{first 8 hex of the SHA-256}</c>. They grow with the time the
/// metadata was committed, so a reader catches up with a range query from its last position; a short look-back
/// (<see cref="Rewind"/>) covers writers whose commits landed out of order (several pullers feeding one mailbox,
/// clocks of different machines).
/// </summary>
public static class SpoolKeys
{
    public const string MessagePrefix = "m:";

    public static string Message(long ticks, string sha256) =>
        string.Create(CultureInfo.InvariantCulture, $"m:{ticks:D19}-{sha256[..8]}");

    /// <summary>The commit ticks of a message key; false when it is not one.</summary>
    public static bool TryGetTicks(string key, out long ticks)
    {
        ticks = 0;
        return key.Length >= 21 && key.StartsWith(MessagePrefix, StringComparison.Ordinal)
            && long.TryParse(key.AsSpan(2, 19), NumberStyles.None, CultureInfo.InvariantCulture, out ticks);
    }

    /// <summary>
    /// A position <paramref name="by"/> before <paramref name="key"/>: every key committed in that window sorts after it
    /// (the key itself when <paramref name="by"/> is zero).
    /// Null (the start of the mailbox) when the key is not a message key or the window reaches back past the start.
    /// </summary>
    public static string? Rewind(string key, TimeSpan by)
    {
        if (by == TimeSpan.Zero)
            return key;
        if (!TryGetTicks(key, out var ticks) || ticks - by.Ticks <= 0)
            return null;
        return string.Create(CultureInfo.InvariantCulture, $"m:{ticks - by.Ticks:D19}");
    }
}
