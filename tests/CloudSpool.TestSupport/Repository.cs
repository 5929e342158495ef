namespace CloudSpool.TestSupport;

/// <summary>The repository the tests and benchmarks run from: the folder above the build that holds CloudSpool.sln.</summary>
public static class Repository
{
    /// <summary>The repository's root folder; throws when the build is not inside a checkout.</summary>
    public static string Root { get; } = FindRoot(AppContext.BaseDirectory)
        ?? throw new InvalidOperationException("the repository (a folder with CloudSpool.sln) was not found above " + AppContext.BaseDirectory);

    /// <summary>A path in the repository, from parts or a relative path with forward slashes.</summary>
    public static string PathOf(params string[] parts) =>
        Path.Combine([Root, .. parts.Select(p => p.Replace('/', Path.DirectorySeparatorChar))]);

    /// <summary>The nearest folder at or above <paramref name="start"/> that holds CloudSpool.sln, or null.</summary>
    public static string? FindRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CloudSpool.sln")))
                return dir.FullName;
        }
        return null;
    }
}
