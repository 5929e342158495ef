using CloudSpool.TestSupport.Fixtures;
using CloudSpool.TestSupport.Soak;

namespace CloudSpool.Bench;

/// <summary>
/// The long soak of issue 7 (`bench/run soak --minutes 30`): the suite's two-minute soak (SoakRunner, from the
/// test-support library) run for as long as asked, with one fault cycle every five minutes; prints the same figures and
/// exits 1 when an invariant broke.
/// </summary>
public static class SoakBench
{
    public static async Task<int> RunAsync(double minutes, int seed, string cloudspoolDll, string? source, string? corpus, CancellationToken cancellationToken)
    {
        CliProcess.Executable = cloudspoolDll;
        corpus ??= Path.GetFullPath(Path.Combine(Environment.CurrentDirectory, "tests", "corpus", "mimekit"));
        string[] files = Directory.Exists(corpus)
            ? [.. Directory.GetFiles(corpus).Where(f => Path.GetFileName(f) != "LICENSE").Order(StringComparer.Ordinal)]
            : [];
        Console.WriteLine($"soak of {source ?? cloudspoolDll}: {minutes} minutes of load and faults, seed {seed}, {files.Length} corpus files");
        var report = await SoakRunner.RunAsync(new SoakOptions
        {
            LoadDuration = TimeSpan.FromMinutes(minutes),
            DrainTimeout = TimeSpan.FromMinutes(Math.Max(4, minutes / 5)),
            Seed = seed,
            CorpusFiles = files,
            Log = Console.WriteLine,
        }, cancellationToken).ConfigureAwait(false);
        Console.WriteLine(report);
        return report.Passed ? 0 : 1;
    }
}
