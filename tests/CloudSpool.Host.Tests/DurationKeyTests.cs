using System.Globalization;
using CloudSpool.Host.Cli;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

/// <summary>
/// Durations are TimeSpan keys; the numeric keys they replaced (Pull:TimeoutSeconds, ...) are still read with the same
/// meaning, and a problem with one names the key the user wrote.
/// </summary>
public sealed class DurationKeyTests : ConfigFileTest
{
    /// <summary>Each older key with a number in its range and the duration it means (not the default).</summary>
    public static TheoryData<string, int, TimeSpan> OlderKeys => new()
    {
        { "Pull:TimeoutSeconds", 90, TimeSpan.FromSeconds(90) },
        { "Pull:LeaseSeconds", 45, TimeSpan.FromSeconds(45) },
        { "Scheduler:RefreshSeconds", 20, TimeSpan.FromSeconds(20) },
        { "Scheduler:MisfireThresholdSeconds", 30, TimeSpan.FromSeconds(30) },
        { "Edge:SyncSeconds", 7, TimeSpan.FromSeconds(7) },
        { "Edge:ReconcileMinutes", 90, TimeSpan.FromMinutes(90) },
        { "Edge:LookbackSeconds", 120, TimeSpan.FromSeconds(120) },
        { "Health:FailingAfterMinutes", 120, TimeSpan.FromMinutes(120) },
        { "Health:StaleAfterHours", 48, TimeSpan.FromHours(48) },
        { "Health:JobOverdueMinutes", 45, TimeSpan.FromMinutes(45) },
        { "Telemetry:ExportIntervalSeconds", 15, TimeSpan.FromSeconds(15) },
        { "StatusPage:RefreshSeconds", 5, TimeSpan.FromSeconds(5) },
        { "Forward:Smtp:TimeoutSeconds", 30, TimeSpan.FromSeconds(30) },
        { "Forward:LeaseSeconds", 20, TimeSpan.FromSeconds(20) },
    };

    /// <summary>Each older key with a number outside its range.</summary>
    public static TheoryData<string, int> OlderKeysOutOfRange => new()
    {
        { "Pull:TimeoutSeconds", 4 },
        { "Pull:LeaseSeconds", 61 },
        { "Scheduler:RefreshSeconds", 0 },
        { "Scheduler:MisfireThresholdSeconds", 3601 },
        { "Edge:SyncSeconds", 0 },
        { "Edge:ReconcileMinutes", 10081 },
        { "Edge:LookbackSeconds", -1 },
        { "Health:FailingAfterMinutes", 0 },
        { "Health:StaleAfterHours", 1441 },
        { "Health:JobOverdueMinutes", 10081 },
        { "Telemetry:ExportIntervalSeconds", 3601 },
        { "StatusPage:RefreshSeconds", 0 },
        { "Forward:Smtp:TimeoutSeconds", 601 },
        { "Forward:LeaseSeconds", 14 },
    };

    /// <summary>A JSON file setting <paramref name="path"/> (Section:Key or Section:Sub:Key) to <paramref name="json"/>.</summary>
    private string WriteKey(string path, string json)
    {
        var parts = path.Split(':');
        var text = json;
        for (var i = parts.Length - 1; i >= 0; i--)
            text = $$"""{ "{{parts[i]}}": {{text}} }""";
        return Write(text);
    }

    /// <summary>The value of the property a key binds, read by reflection along its path.</summary>
    private static object? Property(CloudSpoolOptions options, string path)
    {
        object? value = options;
        foreach (var name in path.Split(':'))
            value = value!.GetType().GetProperty(name)!.GetValue(value);
        return value;
    }

    private static string Quoted(TimeSpan value) => "\"" + value.ToString("c", CultureInfo.InvariantCulture) + "\"";

    [Fact]
    public void The_tests_cover_every_older_key_the_loader_reads()
    {
        var read = LegacyDurationKeys.All.Select(k => k.Old).Order(StringComparer.Ordinal);
        Assert.Equal(read, OlderKeys.Select(row => (string)row[0]).Order(StringComparer.Ordinal));
        Assert.Equal(read, OlderKeysOutOfRange.Select(row => (string)row[0]).Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(OlderKeys))]
    public void The_new_key_binds_a_timespan(string older, int number, TimeSpan expected)
    {
        var (key, unit) = LegacyDurationKeys.All.Where(k => k.Old == older).Select(k => (k.New, k.Unit)).Single();
        Assert.Equal(expected, unit * number);
        var options = ConfigLoader.Load(WriteKey(key, Quoted(expected)));
        Assert.Equal(expected, Property(options, key));
        Assert.NotEqual(expected, Property(new CloudSpoolOptions(), key));
    }

    [Theory]
    [MemberData(nameof(OlderKeys))]
    public void An_older_key_is_read_as_its_successor_with_the_same_meaning(string older, int number, TimeSpan expected)
    {
        var key = LegacyDurationKeys.All.Single(k => k.Old == older).New;
        var options = ConfigLoader.Load(WriteKey(older, number.ToString(CultureInfo.InvariantCulture)));
        Assert.Equal(expected, Property(options, key));

        // As a string, as environment variables give it, and in any case, as every key is.
        var lower = ConfigLoader.Load(WriteKey(older.ToLowerInvariant(), $"\"{number}\""));
        Assert.Equal(expected, Property(lower, key));
    }

    [Theory]
    [MemberData(nameof(OlderKeys))]
    public void An_older_key_and_its_successor_both_set_is_an_error_naming_both(string older, int number, TimeSpan expected)
    {
        var key = LegacyDurationKeys.All.Single(k => k.Old == older).New;
        var parts = key.Split(':');
        var json = $$"""{ "{{parts[^1]}}": {{Quoted(expected)}}, "{{older.Split(':')[^1]}}": {{number}} }""";
        for (var i = parts.Length - 2; i >= 0; i--)
            json = $$"""{ "{{parts[i]}}": {{json}} }""";

        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write(json)));
        var problem = Assert.Single(ex.Problems);
        Assert.Contains(older, problem, StringComparison.Ordinal);
        Assert.Contains(key, problem, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(OlderKeysOutOfRange))]
    public void An_older_key_out_of_range_is_an_error_under_the_key_written(string older, int number)
    {
        var key = LegacyDurationKeys.All.Single(k => k.Old == older).New;
        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey(older, number.ToString(CultureInfo.InvariantCulture))));
        var problem = Assert.Single(ex.Problems);
        Assert.StartsWith(older + ": ", problem, StringComparison.Ordinal);
        Assert.Contains("out of range", problem, StringComparison.Ordinal);
        Assert.EndsWith($"(read as {key})", problem, StringComparison.Ordinal);

        // The same value under the new key: the same limits, named by the new key.
        var unit = LegacyDurationKeys.All.Single(k => k.Old == older).Unit;
        var same = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey(key, Quoted(unit * number))));
        Assert.StartsWith(key + ": ", Assert.Single(same.Problems), StringComparison.Ordinal);
    }

    [Fact]
    public void The_limits_are_those_of_the_numbers_they_replace()
    {
        // Just inside and just outside of each end, under the new keys.
        foreach (var (key, min, max) in new (string, TimeSpan, TimeSpan)[]
                 {
                     ("Pull:Timeout", TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(10)),
                     ("Health:StaleAfter", TimeSpan.FromHours(1), TimeSpan.FromHours(1440)),
                     ("Edge:Lookback", TimeSpan.Zero, TimeSpan.FromSeconds(86400)),
                     ("Edge:ReconcileInterval", TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(10080)),
                 })
        {
            ConfigLoader.Load(WriteKey(key, Quoted(min)));
            ConfigLoader.Load(WriteKey(key, Quoted(max)));
            Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey(key, Quoted(min - TimeSpan.FromMilliseconds(1)))));
            Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey(key, Quoted(max + TimeSpan.FromMilliseconds(1)))));
        }
    }

    [Fact]
    public void Leases_and_the_page_refresh_take_whole_seconds()
    {
        foreach (var key in new[] { "Pull:LeaseDuration", "Forward:LeaseDuration", "StatusPage:RefreshInterval" })
        {
            var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey(key, "\"00:00:20.5\"")));
            Assert.Contains(ex.Problems, p => p.StartsWith(key + ": ", StringComparison.Ordinal) && p.Contains("whole number of seconds", StringComparison.Ordinal));
        }
        Assert.Equal(TimeSpan.FromSeconds(20.5), ConfigLoader.Load(WriteKey("Pull:Timeout", "\"00:00:20.5\"")).Pull.Timeout);
    }

    [Fact]
    public void An_older_key_that_is_no_whole_number_is_named_with_its_unit()
    {
        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey("Health:StaleAfterHours", "\"1.5\"")));
        var problem = Assert.Single(ex.Problems);
        Assert.StartsWith("Health:StaleAfterHours: '1.5' is not a whole number of hours", problem, StringComparison.Ordinal);
        Assert.Contains("Health:StaleAfter", problem.Split(':', 2)[1], StringComparison.Ordinal);
    }

    [Fact]
    public void A_misspelt_older_key_is_still_refused()
    {
        foreach (var misspelt in new[] { "Pull:TimeoutSecond", "Pull:TimeOutSecs", "Health:StaleAfterHour", "Forward:Smtp:LeaseSeconds", "Edge:TimeoutSeconds" })
        {
            var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(WriteKey(misspelt, "10")));
            Assert.Contains(ex.Problems, p => p.StartsWith(misspelt + ": unknown setting", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Settings_read_from_older_keys_are_exported_under_the_new_keys()
    {
        var options = ConfigLoader.Load(Write("""{ "Pull": { "TimeoutSeconds": 90 }, "Health": { "StaleAfterHours": 48 } }"""));
        var settings = ScheduleExportCommand.Settings(options);
        Assert.Equal("00:01:30", settings["CLOUDSPOOL__Pull__Timeout"]);
        Assert.Equal("2.00:00:00", settings["CLOUDSPOOL__Health__StaleAfter"]);
        Assert.DoesNotContain(settings.Keys, k => k.EndsWith("Seconds", StringComparison.Ordinal) || k.EndsWith("Hours", StringComparison.Ordinal));
    }
}
