using CloudSpool.TestSupport;

namespace CloudSpool.Core.Tests;

/// <summary>The test corpus (see <see cref="Corpus"/>) as xunit theory data.</summary>
public static class TestCorpus
{
    public static string Directory => Corpus.Directory;

    public static IEnumerable<string> Messages() => Corpus.Files();

    public static TheoryData<string> MessageNames()
    {
        var data = new TheoryData<string>();
        foreach (var f in Corpus.Files())
            data.Add(Path.GetFileName(f));
        return data;
    }
}
