using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace CloudSpool.Host.Configuration;

/// <summary>A duration key that took a whole number of <see cref="UnitName"/>, read as its TimeSpan successor.</summary>
/// <param name="Old">The older key (Section:Key), e.g. Pull:TimeoutSeconds.</param>
/// <param name="New">The TimeSpan key it sets, e.g. Pull:Timeout.</param>
/// <param name="Unit">What one of the older key's numbers is.</param>
public sealed record LegacyDurationKey(string Old, string New, TimeSpan Unit)
{
    /// <summary>The unit in words: seconds, minutes or hours.</summary>
    public string UnitName => Unit == TimeSpan.FromSeconds(1) ? "seconds" : Unit == TimeSpan.FromMinutes(1) ? "minutes" : "hours";
}

/// <summary>
/// Configurations and environments written for the numeric duration keys keep working: each older key is read as the
/// TimeSpan key that replaced it, with the same meaning, and problems with its value name the key the user wrote.
/// </summary>
public static class LegacyDurationKeys
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);

    /// <summary>Every older key with its successor (docs/configuration.md lists the same, checked by a test).</summary>
    public static IReadOnlyList<LegacyDurationKey> All { get; } =
    [
        new("Pull:TimeoutSeconds", "Pull:Timeout", Second),
        new("Pull:LeaseSeconds", "Pull:LeaseDuration", Second),
        new("Scheduler:RefreshSeconds", "Scheduler:RefreshInterval", Second),
        new("Scheduler:MisfireThresholdSeconds", "Scheduler:MisfireThreshold", Second),
        new("Edge:SyncSeconds", "Edge:SyncInterval", Second),
        new("Edge:ReconcileMinutes", "Edge:ReconcileInterval", Minute),
        new("Edge:LookbackSeconds", "Edge:Lookback", Second),
        new("Health:FailingAfterMinutes", "Health:FailingAfter", Minute),
        new("Health:StaleAfterHours", "Health:StaleAfter", Hour),
        new("Health:JobOverdueMinutes", "Health:JobOverdueAfter", Minute),
        new("Telemetry:ExportIntervalSeconds", "Telemetry:ExportInterval", Second),
        new("StatusPage:RefreshSeconds", "StatusPage:RefreshInterval", Second),
        new("Forward:Smtp:TimeoutSeconds", "Forward:Smtp:Timeout", Second),
        new("Forward:LeaseSeconds", "Forward:LeaseDuration", Second),
    ];

    /// <summary>Whether <paramref name="path"/> (as the configuration spells it, any case) is an older key.</summary>
    public static bool IsOlderKey(string path) => All.Any(k => k.Old.Equals(path, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The older keys set in <paramref name="root"/>, as values of their successors (TimeSpan text), and for each
    /// successor so set the older key it came from; a key set both ways or a value that is no whole number goes to
    /// <paramref name="problems"/>.
    /// </summary>
    public static (Dictionary<string, string?> Values, Dictionary<string, string> ReadFrom) Translate(IConfiguration root, List<string> problems)
    {
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var readFrom = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var key in All)
        {
            var old = root.GetSection(key.Old);
            if (!IsSet(old))
                continue;
            if (IsSet(root.GetSection(key.New)))
            {
                problems.Add($"{key.Old} and {key.New} are both set, and are one setting: keep {key.New} (hh:mm:ss) and remove {key.Old}");
                continue;
            }
            if (!int.TryParse(old.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var count))
            {
                problems.Add($"{key.Old}: '{old.Value}' is not a whole number of {key.UnitName} (or set {key.New} instead, as hh:mm:ss)");
                continue;
            }
            // Beyond what a TimeSpan holds: the extreme is out of every range, and the validator says which range.
            var ticks = Int128.Clamp((Int128)key.Unit.Ticks * count, long.MinValue, long.MaxValue);
            values[key.New] = Core.DurationRules.Text(TimeSpan.FromTicks((long)ticks));
            readFrom[key.New] = key.Old;
        }
        return (values, readFrom);
    }

    /// <summary>Given a value or sub-keys; an empty value (JSON null, an empty variable) counts as not given.</summary>
    private static bool IsSet(IConfigurationSection section) => !string.IsNullOrEmpty(section.Value) || section.GetChildren().Any();
}
