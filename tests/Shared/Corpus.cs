namespace CloudSpool.Testing;

/// <summary>
/// The corpus of odd real-world messages in the repository (tests/corpus/mimekit, MIT licence, see its README).
/// One copy of this file is compiled into every test project.
/// </summary>
public static class Corpus
{
    public static string Directory { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "corpus", "mimekit");
            if (File.Exists(Path.Combine(dir.FullName, "CloudSpool.sln")) && System.IO.Directory.Exists(candidate))
                return Path.GetFullPath(candidate);
        }
        throw new InvalidOperationException("the test corpus (tests/corpus/mimekit in the repository) was not found");
    }

    /// <summary>Every message file of the corpus (not the licence), in a fixed order.</summary>
    public static IReadOnlyList<string> Files() =>
        [.. System.IO.Directory.GetFiles(Directory).Where(f => Path.GetFileName(f) != "LICENSE").Order(StringComparer.Ordinal)];
}

/// <summary>
/// Registers the code-pages encodings when a test assembly loads: MimeKit caches the charsets it can use the first
/// time it looks, so a test that touches MimeKit before any CloudSpool code must not make Japanese mail undecodable
/// for the tests after it.
/// </summary>
internal static class TestEncodings
{
#pragma warning disable CA2255 // The one case module initializers are for: set-up that must precede any other code.
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Register() => System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
}
