using System.Diagnostics;

namespace CloudSpool.Fuzz;

/// <summary>
/// One fuzz target: feeds an input to the code under test once, checks the invariants of that one run and returns the
/// bytes that another run of the same input must reproduce exactly. A broken invariant is thrown as a
/// <see cref="FuzzFindingException"/>; any other exception escaping is a finding too.
/// </summary>
public interface IFuzzTarget
{
    /// <summary>The name on the command line and of the seeds/ and regressions/ folders.</summary>
    string Name { get; }

    /// <summary>Runs one input; returns what the code under test produced (served bytes, trimmed copy, figures).</summary>
    byte[] Run(byte[] input);
}

/// <summary>An invariant that did not hold: the input is a finding.</summary>
public sealed class FuzzFindingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The fuzz targets, by name.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All { get; } = [new Pop3Target(), new IngestTarget(), new TrimTarget()];

    public static IFuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name.Equals(name, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// The invariants every target shares, around <see cref="IFuzzTarget.Run"/>: the same input twice gives the same bytes,
/// memory allocated per run stays bounded, and (when asked) no run takes more than <see cref="MaxRunTime"/>.
/// </summary>
public static class FuzzCheck
{
    /// <summary>Inputs are cut to this length: AFL's own default cap, and far above any seed.</summary>
    public const int MaxInputBytes = 1024 * 1024;

    /// <summary>No input may take longer than this (one run; the determinism check runs it twice).</summary>
    public static readonly TimeSpan MaxRunTime = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Bytes one run may allocate (short-lived garbage included): a fixed allowance plus a multiple of the input
    /// (parsing, decoding, serializing and trimming each make a few copies of a message; the trimmer builds a copy
    /// per step of its search for the longest text that fits).
    /// </summary>
    public static long MaxAllocatedBytes(int inputLength) => (128L << 20) + (256L * inputLength);

    /// <summary>Runs <paramref name="input"/> twice through <paramref name="target"/>; throws on any broken invariant.</summary>
    /// <param name="checkTime">Checks <see cref="MaxRunTime"/> per run: the slower of the two runs is run a third time
    /// before an input is called slow (a loaded machine stalls now and then). Under AFL, its -t does that job.</param>
    public static void Check(IFuzzTarget target, byte[] input, bool checkTime)
    {
        if (input.Length > MaxInputBytes)
            input = input[..MaxInputBytes];
        var (first, firstTime) = Measured(target, input);
        var (second, secondTime) = Measured(target, input);
        if (!first.AsSpan().SequenceEqual(second))
        {
            var at = first.AsSpan().CommonPrefixLength(second);
            throw new FuzzFindingException(
                $"{target.Name}: the same input gave different bytes ({first.Length} and {second.Length} bytes, first difference at offset {at})");
        }
        if (checkTime && (firstTime > MaxRunTime || secondTime > MaxRunTime))
        {
            var (_, again) = Measured(target, input);
            if (again > MaxRunTime)
                throw new FuzzFindingException($"{target.Name}: one run took {again.TotalMilliseconds:0} ms (limit {MaxRunTime.TotalMilliseconds:0} ms)");
        }
    }

    private static (byte[] Output, TimeSpan Time) Measured(IFuzzTarget target, byte[] input)
    {
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        var watch = Stopwatch.StartNew();
        var output = target.Run(input);
        watch.Stop();
        var allocated = GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore;
        if (allocated > MaxAllocatedBytes(input.Length))
            throw new FuzzFindingException($"{target.Name}: one run of a {input.Length}-byte input allocated {allocated:N0} bytes (limit {MaxAllocatedBytes(input.Length):N0})");
        return (output, watch.Elapsed);
    }
}
