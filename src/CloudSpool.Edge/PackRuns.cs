using CloudSpool.Core.Spool;

namespace CloudSpool.Edge;

/// <summary>
/// Groups messages that lie next to each other in one pack blob (or nearly: a small gap) into runs read with one range
/// request, so read-ahead over small packed mail costs a request per run instead of one per message.
/// </summary>
internal static class PackRuns
{
    /// <summary>The most bytes between two members of a run that are read and thrown away.</summary>
    public const long MaxGap = 64 * 1024;

    /// <summary>The most bytes one run spans (its members and the gaps between them).</summary>
    public const long MaxSpan = 8L << 20;

    /// <summary>
    /// The runs of <paramref name="entries"/>: members of one pack sorted by offset, each next one starting at most
    /// <paramref name="maxGap"/> bytes after the end of the one before, the whole at most <paramref name="maxSpan"/>
    /// bytes; a message of its own blob (or a lone member) is a run of one. Runs come in the order of their earliest member
    /// in <paramref name="entries"/>.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<SpoolIndexEntry>> Group(IEnumerable<SpoolIndexEntry> entries, long maxGap = MaxGap, long maxSpan = MaxSpan)
    {
        var runs = new List<List<(SpoolIndexEntry Entry, int At)>>();
        var order = 0;
        foreach (var blob in entries.Select(e => (Entry: e, At: order++)).GroupBy(e => e.Entry.BlobOffset is null ? "\0" + e.At : e.Entry.BlobName, StringComparer.Ordinal))
        {
            List<(SpoolIndexEntry Entry, int At)>? run = null;
            foreach (var member in blob.OrderBy(e => e.Entry.BlobOffset ?? 0))
            {
                var entry = member.Entry;
                var gap = run is null ? -1 : entry.BlobOffset!.Value - End(run[^1].Entry);
                if (run is null || gap < 0 || gap > maxGap || End(entry) - run[0].Entry.BlobOffset!.Value > maxSpan)
                {
                    run = [];
                    runs.Add(run);
                }
                run.Add(member);
            }
        }
        // The run holding the message asked for first goes first: the session reads it soonest.
        return [.. runs.OrderBy(r => r.Min(m => m.At)).Select(r => (IReadOnlyList<SpoolIndexEntry>)[.. r.Select(m => m.Entry)])];
    }

    /// <summary>Where a packed message ends in its blob.</summary>
    public static long End(SpoolIndexEntry entry) => (entry.BlobOffset ?? 0) + entry.RawLength;
}
