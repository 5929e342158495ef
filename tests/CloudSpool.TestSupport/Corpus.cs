namespace CloudSpool.TestSupport;

/// <summary>
/// The corpus of odd real-world messages in the repository (tests/corpus/mimekit, MIT licence, see its README).
/// </summary>
public static class Corpus
{
    public static string Directory { get; } = Find();

    private static string Find()
    {
        var candidate = Path.Combine(Repository.FindRoot(AppContext.BaseDirectory) ?? AppContext.BaseDirectory, "tests", "corpus", "mimekit");
        if (System.IO.Directory.Exists(candidate))
            return Path.GetFullPath(candidate);
        throw new InvalidOperationException("the test corpus (tests/corpus/mimekit in the repository) was not found");
    }

    /// <summary>Every message file of the corpus (not the licence), in a fixed order.</summary>
    public static IReadOnlyList<string> Files() =>
        [.. System.IO.Directory.GetFiles(Directory).Where(f => Path.GetFileName(f) != "LICENSE").Order(StringComparer.Ordinal)];
}
