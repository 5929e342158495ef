using System.Reflection;

namespace CloudSpool.Infra.Tests.Support;

/// <summary>
/// The Bicep CLI from the NuGet package Azure.Bicep.CommandLine.linux-x64 (tools/bicep), restored with this project;
/// it compiles and lints offline.
/// </summary>
public static class Bicep
{
    public static string Executable { get; } = Find();

    private static string Find()
    {
        var root = typeof(Bicep).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .Single(a => a.Key == "BicepPackageRoot").Value;
        var path = Path.Combine(root ?? "", "tools", "bicep");
        if (!File.Exists(path))
            throw new InvalidOperationException($"the Bicep CLI is not at {path}: restore tests/CloudSpool.Infra.Tests");
        return path;
    }

    public static Task<Tool.Result> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        Tool.RunAsync(Executable, args, environment: environment);

    /// <summary>Diagnostics lines (warnings, errors) Bicep prints on standard error, whatever its exit code.</summary>
    public static IReadOnlyList<string> Diagnostics(Tool.Result result) =>
        [.. result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
}
