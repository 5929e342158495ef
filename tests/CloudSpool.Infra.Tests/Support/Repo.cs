namespace CloudSpool.Infra.Tests.Support;

/// <summary>Paths in the source tree the tests check the infra/ files against.</summary>
public static class Repo
{
    public static string Root { get; } = Find();

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CloudSpool.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("the repository (a folder with CloudSpool.sln) was not found above " + AppContext.BaseDirectory);
    }
}
