using System.Text.Json;
using System.Text.RegularExpressions;
using CloudSpool.Infra.Tests.Support;
using CloudSpool.TestSupport;

namespace CloudSpool.Infra.Tests;

/// <summary>The Bicep templates in infra/bicep, compiled and linted by the real Bicep CLI (offline).</summary>
public sealed partial class BicepTemplateTests
{
    public static TheoryData<string> Templates()
    {
        var data = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Repository.PathOf("infra/bicep"), "*.bicep").Order(StringComparer.Ordinal))
            data.Add(Path.GetRelativePath(Repository.Root, file));
        return data;
    }

    [Theory]
    [MemberData(nameof(Templates))]
    public async Task Every_template_compiles_and_passes_the_linter_without_a_warning(string template)
    {
        var build = await Bicep.RunAsync(null, "build", template, "--stdout");
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.Empty(Bicep.Diagnostics(build));
        using (JsonDocument.Parse(build.Stdout))
        {
            // An ARM template came out.
        }

        var lint = await Bicep.RunAsync(null, "lint", template);
        Assert.True(lint.ExitCode == 0, lint.ToString());
        Assert.Empty(Bicep.Diagnostics(lint));
    }

    [Fact]
    public async Task The_linter_run_by_these_tests_reports_warnings()
    {
        // Guards the test above: a template with an unused parameter is not found clean.
        var dir = Directory.CreateTempSubdirectory("cloudspool-bicep-").FullName;
        try
        {
            var file = Path.Combine(dir, "unused.bicep");
            await File.WriteAllTextAsync(file, "param unused string\n");
            var lint = await Bicep.RunAsync(null, "lint", file);
            Assert.Contains(Bicep.Diagnostics(lint), d => d.Contains("no-unused-params", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task The_storage_account_takes_https_only_with_TLS_1_2_and_no_public_blob_access()
    {
        var build = await Bicep.RunAsync(null, "build", "infra/bicep/main.bicep", "--stdout");
        Assert.True(build.ExitCode == 0, build.ToString());
        using var arm = JsonDocument.Parse(build.Stdout);
        var resources = arm.RootElement.GetProperty("resources");
        var storage = Resources(resources).Single(r => r.GetProperty("type").GetString() == "Microsoft.Storage/storageAccounts").GetProperty("properties");
        Assert.True(storage.GetProperty("supportsHttpsTrafficOnly").GetBoolean());
        Assert.Equal("TLS1_2", storage.GetProperty("minimumTlsVersion").GetString());
        Assert.False(storage.GetProperty("allowBlobPublicAccess").GetBoolean());

        // Secrets are secure parameters, never plain ones, and never outputs.
        var parameters = arm.RootElement.GetProperty("parameters");
        Assert.Equal("secureObject", parameters.GetProperty("secrets").GetProperty("type").GetString());
        Assert.Equal("securestring", parameters.GetProperty("registryPassword").GetProperty("type").GetString());
        Assert.DoesNotContain("listKeys", arm.RootElement.GetProperty("outputs").GetRawText(), StringComparison.Ordinal);

        // Both modes exist and the jobs are one per exported entry, each on its cron.
        var types = Resources(resources).Select(r => r.GetProperty("type").GetString()).ToList();
        Assert.Contains("Microsoft.App/jobs", types);
        Assert.Contains("Microsoft.App/containerApps", types);
        Assert.Contains("Microsoft.App/managedEnvironments", types);
        Assert.Equal(["jobs", "worker"], parameters.GetProperty("mode").GetProperty("allowedValues").EnumerateArray().Select(v => v.GetString()));
    }

    /// <summary>The resources of a compiled template, whether Bicep wrote them as an array or (language version 2) an object.</summary>
    private static IEnumerable<JsonElement> Resources(JsonElement resources) =>
        resources.ValueKind == JsonValueKind.Array ? resources.EnumerateArray() : resources.EnumerateObject().Select(p => p.Value);

    [Fact]
    public void The_settings_the_template_sets_are_real_configuration_keys()
    {
        var text = File.ReadAllText(Repository.PathOf("infra/bicep/main.bicep"));
        var names = SettingName().Matches(text).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Contains("CLOUDSPOOL__Storage__ConnectionString", names);
        Assert.Empty(ConfigKeys.Problems(names.Select(n => KeyValuePair.Create(n, n.EndsWith("ConnectionString", StringComparison.Ordinal) ? "UseDevelopmentStorage=true" : "x"))));
    }

    [GeneratedRegex(@"'(CLOUDSPOOL__[A-Za-z]+(?:__[A-Za-z]+)+)'")]
    private static partial Regex SettingName();
}
