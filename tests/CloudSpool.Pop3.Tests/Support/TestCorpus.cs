namespace CloudSpool.Pop3.Tests.Support;

/// <summary>The shared corpus of odd real-world messages (../shared/corpus), found from the repository root.</summary>
public static class TestCorpus
{
    public static string Directory { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "corpus", "mimekit");
            if (System.IO.Directory.Exists(candidate))
                return candidate;
            candidate = Path.Combine(dir.FullName, "..", "shared", "corpus", "mimekit");
            if (System.IO.Directory.Exists(candidate) && File.Exists(Path.Combine(dir.FullName, "CloudSpool.sln")))
                return Path.GetFullPath(candidate);
        }
        throw new InvalidOperationException("the test corpus (../shared/corpus/mimekit beside the repository) was not found");
    }

    /// <summary>Every message file of the corpus (not the licence), in a fixed order.</summary>
    public static IReadOnlyList<string> Messages() =>
        [.. System.IO.Directory.GetFiles(Directory).Where(f => Path.GetFileName(f) != "LICENSE").Order(StringComparer.Ordinal)];

    /// <summary>The corpus as fake maildrop messages, read as stored (line ends untouched).</summary>
    public static List<FakeMessage> AsMessages() =>
        [.. Messages().Select((f, i) => new FakeMessage("corpus-" + (i + 1) + "-" + Path.GetFileNameWithoutExtension(f).Replace('.', '-'), File.ReadAllBytes(f)))];
}
