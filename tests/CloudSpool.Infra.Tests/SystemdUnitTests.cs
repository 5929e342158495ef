using System.Text.RegularExpressions;
using CloudSpool.Host.Cli;
using CloudSpool.Infra.Tests.Support;
using CloudSpool.TestSupport;

namespace CloudSpool.Infra.Tests;

/// <summary>infra/systemd/cloudspool-edge.service: verified by systemd itself, hardened, and starting a real command.</summary>
public sealed partial class SystemdUnitTests
{
    private static readonly string UnitPath = Repository.PathOf("infra/systemd/cloudspool-edge.service");

    /// <summary>Every Key=Value line of the unit (commented-out examples included when asked), in order.</summary>
    private static List<(string Key, string Value)> Settings(bool includeCommented = false) =>
        [.. File.ReadAllLines(UnitPath)
            .Select(l => includeCommented && Regex.IsMatch(l, "^#[A-Z][A-Za-z]+=") ? l[1..] : l)
            .Where(l => Regex.IsMatch(l, "^[A-Z][A-Za-z]+="))
            .Select(l => (l[..l.IndexOf('=', StringComparison.Ordinal)], l[(l.IndexOf('=', StringComparison.Ordinal) + 1)..]))];

    private static string Single(string key) => Assert.Single(Settings(), s => s.Key == key).Value;

    private static string[] ExecStart => Single("ExecStart").Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public async Task Systemd_analyze_verify_accepts_the_unit()
    {
        // The unit names the installed executable; here it is the one built beside these tests.
        var exe = Path.Combine(AppContext.BaseDirectory, "cloudspool");
        Assert.True(File.Exists(exe), $"{exe} was not built");
        var dir = Directory.CreateTempSubdirectory("cloudspool-unit-").FullName;
        try
        {
            var unit = Path.Combine(dir, Path.GetFileName(UnitPath));
            await File.WriteAllTextAsync(unit, File.ReadAllText(UnitPath).Replace($"ExecStart={ExecStart[0]} ", $"ExecStart={exe} ", StringComparison.Ordinal));
            var verify = await Tool.RunAsync("systemd-analyze", ["verify", unit], workingDirectory: dir);
            Assert.True(verify.ExitCode == 0, verify.ToString());
            Assert.DoesNotContain(Path.GetFileName(UnitPath), verify.Stderr, StringComparison.Ordinal);

            // The check itself refuses a unit with a wrong setting.
            await File.WriteAllTextAsync(unit, File.ReadAllText(UnitPath).Replace("ProtectSystem=strict", "ProtectSystem=very", StringComparison.Ordinal));
            var bad = await Tool.RunAsync("systemd-analyze", ["verify", unit], workingDirectory: dir);
            Assert.Contains("protect system value", bad.Stderr + bad.Stdout, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_unit_is_hardened_and_restarts_after_a_failure()
    {
        Assert.Equal("yes", Single("DynamicUser"));
        Assert.Equal("cloudspool", Single("StateDirectory"));
        Assert.Equal("strict", Single("ProtectSystem"));
        Assert.Equal("yes", Single("NoNewPrivileges"));
        Assert.Equal("yes", Single("ProtectHome"));
        Assert.Equal("yes", Single("PrivateTmp"));
        Assert.Equal("CAP_NET_BIND_SERVICE", Single("CapabilityBoundingSet"));
        Assert.Equal("on-failure", Single("Restart"));
        // Exit 2 is a wrong configuration or command line: restarting would not fix it.
        Assert.Equal(ExitCodes.Usage.ToString(System.Globalization.CultureInfo.InvariantCulture), Single("RestartPreventExitStatus"));
        Assert.StartsWith("/etc/cloudspool/", Single("EnvironmentFile"), StringComparison.Ordinal);
        Assert.Contains(Settings(), s => s.Key == "Environment" && s.Value.StartsWith("CLOUDSPOOL_CONFIG=/etc/cloudspool/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task It_starts_a_real_cloudspool_command()
    {
        var exe = ExecStart;
        Assert.Equal("cloudspool", Path.GetFileName(exe[0]));
        Assert.Equal(["edge"], exe[1..]);
        // The CLI's own parser accepts the command line (--help: parse, print the command's help, start nothing).
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.InvokeAsync([.. exe[1..], "--help"], TextReader.Null, output, error);
        Assert.True(code == ExitCodes.Ok, error.ToString());
        Assert.Contains("POP3 only (the LAN unit)", output.ToString(), StringComparison.Ordinal);
        Assert.Equal(ExitCodes.Usage, await CliApp.InvokeAsync(["egde"], TextReader.Null, TextWriter.Null, TextWriter.Null));
    }

    [Fact]
    public void The_settings_it_sets_are_real_configuration_keys()
    {
        // Names only: the values are paths on the LAN machine (the credentials the commented-out example loads).
        var settings = Settings(includeCommented: true).Where(s => s.Key == "Environment")
            .Select(s => s.Value.Split('=', 2)).Where(kv => kv[0].StartsWith("CLOUDSPOOL__", StringComparison.Ordinal))
            .Select(kv => KeyValuePair.Create(kv[0], kv[1].Replace("%d", "/run/credentials/cloudspool-edge.service", StringComparison.Ordinal))).ToList();
        Assert.NotEmpty(settings);
        Assert.DoesNotContain(ConfigKeys.Problems(settings), p => p.Contains("unknown setting", StringComparison.Ordinal));
    }
}
