using CloudSpool.TestSupport;

namespace CloudSpool.Pop3.Tests.Support;

/// <summary>The test corpus (see <see cref="Corpus"/>) for the protocol tests.</summary>
public static class TestCorpus
{
    public static string Directory => Corpus.Directory;

    /// <summary>Every message file of the corpus (not the licence), in a fixed order.</summary>
    public static IReadOnlyList<string> Messages() => Corpus.Files();

    /// <summary>The corpus as fake maildrop messages, read as stored (line ends untouched).</summary>
    public static List<FakeMessage> AsMessages() =>
        [.. Messages().Select((f, i) => new FakeMessage("corpus-" + (i + 1) + "-" + Path.GetFileNameWithoutExtension(f).Replace('.', '-'), File.ReadAllBytes(f)))];
}
