using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

public sealed class ConfigLoaderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudspool-config-").FullName;

    private string Write(string json)
    {
        var path = Path.Combine(_dir, "cloudspool.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void Defaults_are_valid_without_a_file()
    {
        var options = ConfigLoader.Load(null);
        Assert.Equal("0 */5 * * * ?", options.Pull.DefaultSchedule);
    }

    [Fact]
    public void A_valid_file_is_bound()
    {
        var options = ConfigLoader.Load(Write("""{ "Pull": { "DefaultSchedule": "0 */2 * * * ?", "TimeZone": "Asia/Tokyo", "MaxBackoff": "00:30:00" } }"""));
        Assert.Equal("0 */2 * * * ?", options.Pull.DefaultSchedule);
        Assert.Equal("Asia/Tokyo", options.Pull.TimeZone);
        Assert.Equal(TimeSpan.FromMinutes(30), options.Pull.MaxBackoff);
    }

    [Fact]
    public void Every_wrong_value_is_reported_with_its_path_and_what_was_expected()
    {
        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""
            { "Storage": { "NamePrefix": "Bad-Prefix", "Azurite": { "BlobPort": 0 } },
              "Pull": { "DefaultSchedule": "every five minutes", "TimeZone": "Nowhere/Land", "LeaseDuration": "00:01:30" } }
            """)));
        Assert.Contains(ex.Problems, p => p.StartsWith("Storage:NamePrefix:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("Storage:Azurite:BlobPort:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("Pull:DefaultSchedule:", StringComparison.Ordinal) && p.Contains("cron"));
        Assert.Contains(ex.Problems, p => p.StartsWith("Pull:TimeZone:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("Pull:LeaseDuration:", StringComparison.Ordinal) && p.Contains("15-60"));
    }

    [Fact]
    public void Telemetry_needs_an_http_url_and_a_sane_interval_and_the_health_thresholds_are_bounded()
    {
        Assert.Null(ConfigLoader.Load(null).Telemetry.OtlpEndpoint);
        Assert.Equal("http://127.0.0.1:4318", ConfigLoader.Load(Write("""{ "Telemetry": { "OtlpEndpoint": "http://127.0.0.1:4318" } }""")).Telemetry.OtlpEndpoint);
        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""
            { "Telemetry": { "OtlpEndpoint": "collector:4318", "ExportInterval": "00:00:00" }, "Health": { "JobOverdueAfter": "00:00:00" } }
            """)));
        Assert.Contains(ex.Problems, p => p.StartsWith("Telemetry:OtlpEndpoint:", StringComparison.Ordinal) && p.Contains("http://"));
        Assert.Contains(ex.Problems, p => p.StartsWith("Telemetry:ExportInterval:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("Health:JobOverdueAfter:", StringComparison.Ordinal));
    }

    [Fact]
    public void Misspelt_keys_and_unconvertible_values_are_refused()
    {
        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""{ "Pull": { "DefaultSchedul": "x", "LeaseDuration": "thirty" }, "Edgee": {} }""")));
        Assert.Contains(ex.Problems, p => p.StartsWith("Pull:DefaultSchedul: unknown setting", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.Contains("Pull:LeaseDuration") && p.Contains("thirty"));
    }

    [Fact]
    public void The_repair_check_of_the_retention_job_is_a_named_mode()
    {
        Assert.Equal(CloudSpool.Core.Retention.RepairMode.Report, ConfigLoader.Load(null).Retention.Repair);
        Assert.True(ConfigLoader.Load(null).Retention.Scheduled);
        var off = ConfigLoader.Load(Write("""{ "Retention": { "Repair": "Off" } }""")).Retention;
        Assert.False(off.Scheduled);
        Assert.Equal(CloudSpool.Core.Retention.RepairMode.Fix, ConfigLoader.Load(Write("""{ "Retention": { "Repair": "fix" } }""")).Retention.Repair);
        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""{ "Retention": { "Repair": "sometimes" } }""")));
        Assert.Contains(ex.Problems, p => p.Contains("Retention:Repair") && p.Contains("sometimes"));
    }

    [Fact]
    public void Broken_json_and_missing_files_are_reported()
    {
        Assert.Contains("not valid JSON", Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("{ \"Pull\": "))).Message);
        Assert.Contains("does not exist", Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Path.Combine(_dir, "nope.json"))).Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
