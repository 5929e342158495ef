using CloudSpool.TestSupport;

namespace CloudSpool.Fuzz.Tests;

/// <summary>Where the fuzz project's seeds, regressions, script and build are, from the test's own build folder.</summary>
internal static class FuzzPaths
{
    public static string Project => Repository.PathOf("tests", "CloudSpool.Fuzz");

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
}
