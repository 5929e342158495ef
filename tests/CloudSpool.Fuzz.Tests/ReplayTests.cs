using CloudSpool.TestSupport;

namespace CloudSpool.Fuzz.Tests;

/// <summary>
/// Every committed seed and every regression input (a past finding) through its target, with every invariant checked
/// (exceptions, determinism, allocation, one second per run): deterministic and fast, no AFL needed.
/// </summary>
public sealed class ReplayTests
{
    public static TheoryData<string> Targets => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Seeds_and_regressions_keep_every_invariant(string target)
    {
        var folders = new[] { FuzzPaths.Seeds(target), FuzzPaths.Regressions(target) }.Where(Directory.Exists);
        var files = Replay.Inputs(folders);
        Assert.NotEmpty(files);
        AssertNoFailures(target, files);
    }

    [Theory]
    [InlineData("ingest")]
    [InlineData("trim")]
    public void Every_corpus_message_keeps_every_invariant(string target) => AssertNoFailures(target, Corpus.Files());

    [Fact]
    public void Every_target_has_committed_seeds()
    {
        foreach (var target in FuzzTargets.All)
            Assert.True(Directory.Exists(FuzzPaths.Seeds(target.Name)) && Directory.GetFiles(FuzzPaths.Seeds(target.Name)).Length > 0, target.Name + " has no seeds");
    }

    [Fact]
    public void A_broken_invariant_is_reported_with_the_file()
    {
        // The checks themselves must be able to fail: a target that answers differently each time is caught.
        var file = Path.Combine(Path.GetTempPath(), "fuzz-replay-" + Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(file, [1, 2, 3]);
        try
        {
            var failure = Assert.Single(Replay.Run(new Flaky(), [file]));
            Assert.Equal(file, failure.File);
            Assert.Contains("the same input gave different bytes", failure.Problem, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static void AssertNoFailures(string target, IReadOnlyList<string> files)
    {
        var failures = Replay.Run(FuzzTargets.Find(target)!, files);
        Assert.True(failures.Count == 0, string.Join("\n", failures.Select(f => $"{Path.GetFileName(f.File)}: {f.Problem}")));
    }

    private sealed class Flaky : IFuzzTarget
    {
        private int _runs;

        public string Name => "flaky";

        public byte[] Run(byte[] input) => [(byte)_runs++];
    }
}
