namespace CloudSpool.Fuzz;

/// <summary>Runs saved inputs through a target without AFL, with every invariant checked (time included).</summary>
public static class Replay
{
    /// <summary>An input that broke an invariant, and how.</summary>
    public sealed record Failure(string File, string Problem);

    /// <summary>The files of each folder (sorted; README files skipped) or the file itself.</summary>
    public static IReadOnlyList<string> Inputs(IEnumerable<string> paths) =>
    [
        .. paths.SelectMany<string, string>(p => Directory.Exists(p)
            ? Directory.GetFiles(p).Where(f => !Path.GetFileName(f).StartsWith("README", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            : [p]),
    ];

    /// <summary>Checks every input; returns the ones that failed.</summary>
    public static IReadOnlyList<Failure> Run(IFuzzTarget target, IReadOnlyList<string> files)
    {
        var failures = new List<Failure>();
        // The first run of a target compiles its code paths: not a fair measure of time.
        if (files.Count > 0)
            Try(target, files[0], checkTime: false, failures);
        foreach (var file in files)
            Try(target, file, checkTime: true, failures);
        return [.. failures.DistinctBy(f => f.File)];
    }

    private static void Try(IFuzzTarget target, string file, bool checkTime, List<Failure> failures)
    {
        try
        {
            FuzzCheck.Check(target, File.ReadAllBytes(file), checkTime);
        }
        catch (Exception ex)
        {
            failures.Add(new Failure(file, ex is FuzzFindingException ? ex.Message : ex.ToString()));
        }
    }
}
