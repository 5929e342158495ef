namespace CloudSpool.Fuzz.Tests;

/// <summary>Where the fuzz project's seeds, regressions, script and build are, from the test's own build folder.</summary>
internal static class FuzzPaths
{
    public static string RepoRoot { get; } = FindRoot();

    public static string Project => Path.Combine(RepoRoot, "tests", "CloudSpool.Fuzz");

    public static string Seeds(string target) => Path.Combine(Project, "seeds", target);

    public static string Regressions(string target) => Path.Combine(Project, "regressions", target);

    /// <summary>The fuzz project's build of the same configuration as this test assembly (bin/CONFIG/net10.0).</summary>
    public static string Build
    {
        get
        {
            var tfm = new DirectoryInfo(AppContext.BaseDirectory);
            return Path.Combine(Project, "bin", tfm.Parent!.Name, tfm.Name);
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CloudSpool.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("CloudSpool.sln not found above " + AppContext.BaseDirectory);
    }
}
