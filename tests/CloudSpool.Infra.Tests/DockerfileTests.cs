using System.IO.Enumeration;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using CloudSpool.Infra.Tests.Support;
using CloudSpool.TestSupport;

namespace CloudSpool.Infra.Tests;

/// <summary>
/// infra/Dockerfile cannot be built here (no Docker engine), so what it relies on is checked against the repository:
/// the files it copies, the project it publishes, the executable it starts, its user and its settings.
/// </summary>
public sealed partial class DockerfileTests
{
    private sealed record Instruction(string Name, string Arguments, int Stage);

    private static readonly List<Instruction> Instructions = Parse(File.ReadAllText(Repository.PathOf("infra/Dockerfile")));

    /// <summary>Instructions with continuation lines joined and comments dropped; stages counted from 0.</summary>
    private static List<Instruction> Parse(string text)
    {
        var result = new List<Instruction>();
        var stage = -1;
        var joined = Regex.Replace(text, @"\\\r?\n", " ");
        foreach (var raw in joined.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var name = line[..space].ToUpperInvariant();
            if (name == "FROM")
                stage++;
            result.Add(new Instruction(name, Regex.Replace(line[(space + 1)..], @"\s+", " ").Trim(), stage));
        }
        return result;
    }

    private static int LastStage => Instructions.Max(i => i.Stage);

    private static IEnumerable<(string[] Sources, Instruction At)> CopiesFromContext() =>
        Instructions.Where(i => i.Name == "COPY" && !i.Arguments.StartsWith("--from", StringComparison.Ordinal))
            .Select(i => (i.Arguments.Split(' ')[..^1], i));

    private static string Host => "src/CloudSpool.Host/CloudSpool.Host.csproj";

    [Fact]
    public void Every_file_the_build_copies_exists_and_is_not_excluded_from_the_build_context()
    {
        var ignored = File.ReadAllLines(Repository.PathOf(".dockerignore"))
            .Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var sources = CopiesFromContext().SelectMany(c => c.Sources).ToList();
        Assert.NotEmpty(sources);
        foreach (var source in sources)
        {
            Assert.True(File.Exists(Repository.PathOf(source)) || Directory.Exists(Repository.PathOf(source)), $"COPY {source}: no such file in the repository");
            var hit = ignored.FirstOrDefault(p => Excludes(p, source.TrimEnd('/')));
            Assert.True(hit is null, $"COPY {source}: excluded from the build context by .dockerignore '{hit}'");
        }
        // What must stay out of the context stays out.
        Assert.True(ignored.Any(p => Excludes(p, "src/CloudSpool.Host/bin")), "bin/ folders reach the build context");
        Assert.True(ignored.Any(p => Excludes(p, "azurite")), "azurite/ reaches the build context");
    }

    /// <summary>A .dockerignore pattern (Go filepath.Match with **) excluding a path or one of its parents.</summary>
    private static bool Excludes(string pattern, string path)
    {
        var p = pattern.TrimEnd('/');
        var segments = path.Split('/');
        for (var n = 1; n <= segments.Length; n++)
        {
            var prefix = string.Join('/', segments[..n]);
            if (FileSystemName.MatchesSimpleExpression(p.Replace("**/", "*", StringComparison.Ordinal), prefix, ignoreCase: false)
                && (p.Contains('/', StringComparison.Ordinal) || !prefix.Contains('/', StringComparison.Ordinal) || p.StartsWith("**/", StringComparison.Ordinal)))
                return true;
        }
        return false;
    }

    [Fact]
    public void The_restore_layer_copies_every_project_the_host_needs_before_restoring()
    {
        var restore = Instructions.FindIndex(i => i.Name == "RUN" && i.Arguments.StartsWith("dotnet restore", StringComparison.Ordinal));
        Assert.True(restore > 0, "no RUN dotnet restore");
        var before = CopiesFromContext().Where(c => Instructions.IndexOf(c.At) < restore).SelectMany(c => c.Sources).ToHashSet();
        foreach (var needed in ProjectClosure(Host).Append("Directory.Build.props").Append("Directory.Packages.props").Append("global.json"))
            Assert.Contains(needed, before);
        Assert.Contains(Host, Instructions[restore].Arguments, StringComparison.Ordinal);
    }

    /// <summary>A project and every project it references, transitively, as repository paths.</summary>
    private static IEnumerable<string> ProjectClosure(string project)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var queue = new Queue<string>([project]);
        while (queue.TryDequeue(out var current))
        {
            if (!seen.Add(current))
                continue;
            var dir = Path.GetDirectoryName(Repository.PathOf(current))!;
            foreach (var reference in XDocument.Load(Repository.PathOf(current)).Descendants("ProjectReference"))
            {
                var full = Path.GetFullPath(Path.Combine(dir, reference.Attribute("Include")!.Value.Replace('\\', '/')));
                queue.Enqueue(Path.GetRelativePath(Repository.Root, full).Replace('\\', '/'));
            }
        }
        Assert.True(seen.Count >= 5, $"the host references too few projects: {string.Join(", ", seen)}");
        return seen;
    }

    [Fact]
    public void It_publishes_the_host_project_and_starts_its_executable()
    {
        var publish = Assert.Single(Instructions, i => i.Name == "RUN" && i.Arguments.StartsWith("dotnet publish", StringComparison.Ordinal));
        var args = publish.Arguments.Split(' ');
        Assert.Equal(Host, args[2]);
        Assert.True(File.Exists(Repository.PathOf(args[2])));
        var output = args[Array.IndexOf(args, "-o") + 1];

        var assemblyName = XDocument.Load(Repository.PathOf(Host)).Descendants("AssemblyName").Single().Value;
        Assert.Equal("cloudspool", assemblyName);
        var copied = Assert.Single(Instructions, i => i.Name == "COPY" && i.Stage == LastStage && i.Arguments.StartsWith("--from=build", StringComparison.Ordinal));
        Assert.Equal($"--from=build {output} ./", copied.Arguments);
        var workdir = Instructions.Last(i => i.Name == "WORKDIR" && i.Stage == LastStage).Arguments;

        // Exec form, so `docker run IMAGE job run pull --account X` passes the arguments straight to cloudspool.
        var entrypoint = Instructions.Single(i => i.Name == "ENTRYPOINT").Arguments;
        Assert.Equal([$"{workdir}/{assemblyName}"], JsonSerializer.Deserialize<string[]>(entrypoint)!);
    }

    [Fact]
    public void The_image_is_built_with_the_sdk_and_runs_on_the_runtime_of_the_target_framework()
    {
        var framework = XDocument.Load(Repository.PathOf("Directory.Build.props")).Descendants("TargetFramework").Single().Value;
        var version = framework["net".Length..];
        var froms = Instructions.Where(i => i.Name == "FROM").Select(i => i.Arguments).ToList();
        Assert.Equal(2, froms.Count);
        Assert.Equal($"mcr.microsoft.com/dotnet/sdk:{version} AS build", froms[0]);
        // No SDK; the ASP.NET Core runtime when the host uses it (the status page), with ICU and time zone data for
        // schedules in zones like Asia/Tokyo.
        var usesAspNetCore = XDocument.Load(Repository.PathOf(Host)).Descendants("FrameworkReference")
            .Any(f => f.Attribute("Include")?.Value == "Microsoft.AspNetCore.App");
        var image = usesAspNetCore ? "aspnet" : "runtime";
        Assert.Matches($"^mcr\\.microsoft\\.com/dotnet/{image}:{Regex.Escape(version)}-[a-z]+-chiseled-extra$", froms[1]);
    }

    [Fact]
    public void The_image_exposes_the_status_page_port_and_serves_it_beyond_loopback_for_probes()
    {
        var expose = Assert.Single(Instructions, i => i.Name == "EXPOSE");
        Assert.Equal(new CloudSpool.Host.Configuration.StatusPageOptions().Port.ToString(System.Globalization.CultureInfo.InvariantCulture), expose.Arguments);
        Assert.Contains(Instructions, i => i.Name == "ENV" && i.Arguments.Contains("CLOUDSPOOL__StatusPage__Listen=0.0.0.0", StringComparison.Ordinal));
    }

    [Fact]
    public void The_image_runs_as_a_user_other_than_root()
    {
        var user = Instructions.Last(i => i.Name == "USER");
        Assert.Equal(LastStage, user.Stage);
        Assert.True(Instructions.IndexOf(user) < Instructions.FindIndex(i => i.Name == "ENTRYPOINT"), "USER must come before ENTRYPOINT");
        Assert.DoesNotMatch("^(root|0)(:.*)?$", user.Arguments);
    }

    [Fact]
    public void Its_settings_are_real_configuration_keys_with_valid_values()
    {
        var settings = Instructions.Where(i => i.Name == "ENV")
            .SelectMany(i => EnvPair().Matches(i.Arguments).Select(m => KeyValuePair.Create(m.Groups[1].Value, m.Groups[2].Value)))
            .Where(kv => kv.Key.StartsWith("CLOUDSPOOL__", StringComparison.Ordinal)).ToList();
        Assert.Contains(settings, kv => kv.Key == "CLOUDSPOOL__Pull__TempDirectory");
        Assert.Empty(ConfigKeys.Problems(settings));
        // The check itself catches a misspelt key.
        Assert.Contains(ConfigKeys.Problems([KeyValuePair.Create("CLOUDSPOOL__Pull__TempDirectoy", "/tmp")]), p => p.Contains("unknown setting", StringComparison.Ordinal));
    }

    [GeneratedRegex(@"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")]
    private static partial Regex EnvPair();
}
