using System.Text.Json;
using CloudSpool.Infra.Tests.Support;
using CloudSpool.TestSupport;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Infra.Tests;

/// <summary>
/// `cloudspool schedule export` run as a real process against a real Azurite: the cloud jobs are generated from the
/// schedules in effect, edits included, and the parameters it writes compile with infra/bicep/main.bicep.
/// </summary>
public sealed class ScheduleExportTests : IAsyncLifetime, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudspool-export-").FullName;
    private Dictionary<string, string> _env = [];

    public async Task InitializeAsync()
    {
        var azurite = await SharedAzurite.GetAsync();
        _env = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_CONFIG"] = "",
            ["CLOUDSPOOL__Storage__ConnectionString"] = azurite.ConnectionString,
            ["CLOUDSPOOL__Storage__NamePrefix"] = SharedAzurite.NewPrefix(),
            ["CLOUDSPOOL__Pull__TempDirectory"] = _dir,
            ["CLOUDSPOOL__Retention__DefaultDays"] = "30",
            ["CLOUDSPOOL__Retention__Mailboxes__alice"] = "365",
        };
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private async Task<(int ExitCode, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var result = await CliProcess.RunAsync(_env, args);
        return result;
    }

    private async Task AddAccountAsync(string name, string passwordRef, params string[] extra)
    {
        var add = await CliAsync(["account", "add", name, "--host", "mail.example.net", "--user", "me", "--password-ref", passwordRef, "--mailbox", "alice", .. extra]);
        Assert.True(add.ExitCode == 0, add.Stderr);
    }

    [Fact]
    public async Task The_parameters_it_writes_after_a_schedule_edit_compile_with_the_template_and_carry_the_converted_crons()
    {
        await AddAccountAsync("isp", "env:CLOUDSPOOL_SECRET_ISP", "--schedule", "0 */5 * * * ?");
        await AddAccountAsync("tokyo", "env:CLOUDSPOOL_SECRET_TOKYO", "--protocol", "imap", "--schedule", "0 0 8 ? * MON-FRI", "--tz", "Asia/Tokyo");
        await AddAccountAsync("old", "env:CLOUDSPOOL_SECRET_OLD", "--disabled");
        var set = await CliAsync("schedule", "set", "pull:isp", "0 */2 * * * ?");
        Assert.True(set.ExitCode == 0, set.Stderr);

        var file = Path.Combine(_dir, "cloudspool.bicepparam");
        var export = await CliAsync("schedule", "export", "--out", file, "--template", Repository.PathOf("infra/bicep/main.bicep"));
        Assert.True(export.ExitCode == 0, export.Stderr);
        var text = await File.ReadAllTextAsync(file);
        Assert.Contains("cron: '*/2 * * * *'", text, StringComparison.Ordinal);
        Assert.Contains("schedule: 'pull:isp \"0 */2 * * * ?\" UTC (edited)'", text, StringComparison.Ordinal);
        Assert.Contains("cron: '0 23 * * 0-4'", text, StringComparison.Ordinal);
        Assert.DoesNotContain("pull-old", text, StringComparison.Ordinal);
        // Secrets are read from the deployer's environment when the parameters are built, never written down.
        Assert.Contains("CLOUDSPOOL_SECRET_ISP: readEnvironmentVariable('CLOUDSPOOL_SECRET_ISP')", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Eby8vdM02x", text, StringComparison.Ordinal);

        var deployer = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_IMAGE"] = "example.azurecr.io/cloudspool:1.0",
            ["CLOUDSPOOL_SECRET_ISP"] = "isp-secret",
            ["CLOUDSPOOL_SECRET_TOKYO"] = "tokyo-secret",
        };
        var build = await Bicep.RunAsync(deployer, "build-params", file, "--stdout");
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.Empty(Bicep.Diagnostics(build));
        var lint = await Bicep.RunAsync(deployer, "lint", file);
        Assert.True(lint.ExitCode == 0, lint.ToString());
        Assert.Empty(Bicep.Diagnostics(lint));

        using var output = JsonDocument.Parse(build.Stdout);
        using var parameters = JsonDocument.Parse(output.RootElement.GetProperty("parametersJson").GetString()!);
        var values = parameters.RootElement.GetProperty("parameters");
        Assert.Equal("jobs", values.GetProperty("mode").GetProperty("value").GetString());
        Assert.Equal("example.azurecr.io/cloudspool:1.0", values.GetProperty("image").GetProperty("value").GetString());
        var jobs = values.GetProperty("jobs").GetProperty("value").EnumerateArray()
            .ToDictionary(j => j.GetProperty("name").GetString()!, j => (j.GetProperty("job").GetString(), j.GetProperty("account").GetString(), j.GetProperty("cron").GetString()));
        Assert.Equal(new Dictionary<string, (string?, string?, string?)>
        {
            ["pull-isp"] = ("pull", "isp", "*/2 * * * *"),
            ["pull-tokyo"] = ("pull", "tokyo", "0 23 * * 0-4"),
            ["retention"] = ("retention", "", "30 3 * * *"),
            ["health"] = ("health", "", "*/5 * * * *"),
        }, jobs);
        var secrets = values.GetProperty("secrets").GetProperty("value");
        Assert.Equal("isp-secret", secrets.GetProperty("CLOUDSPOOL_SECRET_ISP").GetString());
        Assert.Equal("tokyo-secret", secrets.GetProperty("CLOUDSPOOL_SECRET_TOKYO").GetString());

        // The containers get the settings that differ from the defaults, and every one is a real configuration key.
        var settings = values.GetProperty("settings").GetProperty("value").EnumerateObject()
            .ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal("30", settings["CLOUDSPOOL__Retention__DefaultDays"]);
        Assert.Equal("365", settings["CLOUDSPOOL__Retention__Mailboxes__alice"]);
        Assert.Equal(_env["CLOUDSPOOL__Storage__NamePrefix"], settings["CLOUDSPOOL__Storage__NamePrefix"]);
        Assert.DoesNotContain("CLOUDSPOOL__Storage__ConnectionString", settings.Keys);
        Assert.DoesNotContain("CLOUDSPOOL__Pull__TempDirectory", settings.Keys);
        Assert.Empty(ConfigKeys.Problems(settings));

        // The compiled template is the real one, with one job per entry.
        var template = output.RootElement.GetProperty("templateJson").GetString()!;
        Assert.Contains("Microsoft.App/jobs", template, StringComparison.Ordinal);

        // What a job container runs, run here: `cloudspool job run retention` with the exported settings.
        var containerEnv = new Dictionary<string, string>(settings) { ["CLOUDSPOOL_CONFIG"] = "", ["CLOUDSPOOL__Storage__ConnectionString"] = _env["CLOUDSPOOL__Storage__ConnectionString"] };
        var retention = await CliProcess.RunAsync(containerEnv, "job", "run", "retention");
        Assert.True(retention.ExitCode == 0, retention.Stderr);
        Assert.StartsWith("retention: ok", retention.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_schedule_it_cannot_convert_exactly_is_refused_naming_the_job_and_nothing_is_written()
    {
        await AddAccountAsync("berlin", "env:CLOUDSPOOL_SECRET_BERLIN", "--schedule", "0 0 7 * * ?", "--tz", "Europe/Berlin");
        _env["CLOUDSPOOL__Secrets__Directory"] = "/etc/cloudspool";
        await AddAccountAsync("filed", "file:/etc/cloudspool/filed.password");
        var file = Path.Combine(_dir, "refused.bicepparam");

        var export = await CliAsync("schedule", "export", "--out", file);
        Assert.Equal(1, export.ExitCode);
        Assert.Contains("pull:berlin: \"0 0 7 * * ?\" (Europe/Berlin) cannot run as a UTC cron: Europe/Berlin changes its UTC offset", export.Stderr, StringComparison.Ordinal);
        Assert.Contains("pull:filed: the password comes from 'file:/etc/cloudspool/filed.password'", export.Stderr, StringComparison.Ordinal);
        Assert.Contains("nothing was written", export.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(file));

        // The worker runs Quartz itself, in any zone: no conversion, no refusal for the zone.
        var remove = await CliAsync("account", "remove", "filed");
        Assert.True(remove.ExitCode == 0, remove.Stderr);
        var worker = await CliAsync("schedule", "export", "--mode", "worker", "--format", "json");
        Assert.True(worker.ExitCode == 0, worker.Stderr);
        using (var json = JsonDocument.Parse(worker.Stdout))
        {
            var parameters = json.RootElement.GetProperty("parameters");
            Assert.Equal("worker", parameters.GetProperty("mode").GetProperty("value").GetString());
            Assert.Equal(0, parameters.GetProperty("jobs").GetProperty("value").GetArrayLength());
            // Every parameter of the ARM parameters file is one the template declares.
            var build = await Bicep.RunAsync(null, "build", "infra/bicep/main.bicep", "--stdout");
            Assert.True(build.ExitCode == 0, build.ToString());
            using var template = JsonDocument.Parse(build.Stdout);
            var declared = template.RootElement.GetProperty("parameters").EnumerateObject().Select(p => p.Name).ToHashSet();
            Assert.All(parameters.EnumerateObject(), p => Assert.Contains(p.Name, declared));
        }
        Assert.Contains("pass the image and these secrets yourself", worker.Stderr, StringComparison.Ordinal);

        // An edit to a zone without daylight saving time makes it exportable as jobs.
        var set = await CliAsync("schedule", "set", "pull:berlin", "0 0 6 * * ?", "--tz", "UTC");
        Assert.True(set.ExitCode == 0, set.Stderr);
        var jobs = await CliAsync("schedule", "export", "--format", "json");
        Assert.True(jobs.ExitCode == 0, jobs.Stderr);
        using var exported = JsonDocument.Parse(jobs.Stdout);
        var berlin = exported.RootElement.GetProperty("parameters").GetProperty("jobs").GetProperty("value").EnumerateArray()
            .Single(j => j.GetProperty("name").GetString() == "pull-berlin");
        Assert.Equal("0 6 * * *", berlin.GetProperty("cron").GetString());
    }

    [Fact]
    public async Task A_stored_reference_to_a_variable_outside_the_prefix_is_refused_and_never_copied_into_the_deployment()
    {
        // Rows stored under another rule (before it existed, or by a machine configured otherwise) name other variables.
        _env["CLOUDSPOOL__Secrets__EnvironmentPrefix"] = "ISP_";
        await AddAccountAsync("isp", "env:ISP_PASSWORD");
        _env.Remove("CLOUDSPOOL__Secrets__EnvironmentPrefix");
        var file = Path.Combine(_dir, "stolen.bicepparam");

        var export = await CliAsync("schedule", "export", "--out", file);
        Assert.Equal(1, export.ExitCode);
        Assert.Contains("pull:isp: 'env:ISP_PASSWORD' is not allowed: an env: reference may name only a variable whose name starts with CLOUDSPOOL_SECRET_", export.Stderr, StringComparison.Ordinal);
        Assert.Contains("nothing was written", export.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(file));
        var json = await CliAsync("schedule", "export", "--format", "json");
        Assert.Equal(1, json.ExitCode);
        Assert.DoesNotContain("ISP_PASSWORD", json.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Forwarding_exports_its_job_its_relay_secret_and_list_settings_the_containers_read_back()
    {
        _env["CLOUDSPOOL__Forward__Mailbox"] = "alice";
        _env["CLOUDSPOOL__Forward__Sender"] = "cloudspool@home.example";
        _env["CLOUDSPOOL__Forward__Destinations__0__Address"] = "phone@carrier.example";
        _env["CLOUDSPOOL__Forward__Destinations__0__MaxBytes"] = "50000";
        _env["CLOUDSPOOL__Forward__Destinations__0__KeepAttachmentTypes__0"] = "text/calendar";
        _env["CLOUDSPOOL__Forward__Rules__0__Name"] = "no newsletters";
        _env["CLOUDSPOOL__Forward__Rules__0__Subject"] = "newsletter";
        _env["CLOUDSPOOL__Forward__Rules__0__Action"] = "skip";
        _env["CLOUDSPOOL__Forward__Smtp__Host"] = "smtp.example.net";
        _env["CLOUDSPOOL__Forward__Smtp__User"] = "me";
        _env["CLOUDSPOOL__Forward__Smtp__Password"] = "env:CLOUDSPOOL_SECRET_RELAY";

        var export = await CliAsync("schedule", "export", "--format", "json");
        Assert.True(export.ExitCode == 0, export.Stderr);
        Assert.Contains("CLOUDSPOOL_SECRET_RELAY", export.Stderr, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(export.Stdout);
        var parameters = json.RootElement.GetProperty("parameters");
        var forward = parameters.GetProperty("jobs").GetProperty("value").EnumerateArray().Single(j => j.GetProperty("job").GetString() == "forward");
        Assert.Equal("* * * * *", forward.GetProperty("cron").GetString());

        var settings = parameters.GetProperty("settings").GetProperty("value").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        Assert.Equal("phone@carrier.example", settings["CLOUDSPOOL__Forward__Destinations__0__Address"]);
        Assert.Equal("50000", settings["CLOUDSPOOL__Forward__Destinations__0__MaxBytes"]);
        Assert.Equal("text/calendar", settings["CLOUDSPOOL__Forward__Destinations__0__KeepAttachmentTypes__0"]);
        Assert.Equal("skip", settings["CLOUDSPOOL__Forward__Rules__0__Action"]);
        Assert.Equal("env:CLOUDSPOOL_SECRET_RELAY", settings["CLOUDSPOOL__Forward__Smtp__Password"]);
        Assert.DoesNotContain(settings.Keys, k => k.EndsWith("__Configured", StringComparison.Ordinal) || k.EndsWith("__Scheduled", StringComparison.Ordinal) || k.Contains("Capacity", StringComparison.Ordinal));

        // What a forward container gets is a valid configuration with the same forwarding in it.
        var containerEnv = new Dictionary<string, string>(settings) { ["CLOUDSPOOL_CONFIG"] = "", ["CLOUDSPOOL__Storage__ConnectionString"] = _env["CLOUDSPOOL__Storage__ConnectionString"] };
        var status = await CliProcess.RunAsync(containerEnv, "forward", "status");
        Assert.True(status.ExitCode == 0, status.Stderr);
        Assert.Contains("phone@carrier.example", status.Stdout, StringComparison.Ordinal);
    }
}
