using CloudSpool.Core.Edge;
using CloudSpool.Core.Spool;

namespace CloudSpool.Core.Retention;

/// <summary>
/// Keeps a mailbox's per-client views small from the retention run: drops the markers of messages that are gone from
/// the spool, and merges the small records a view gathers (one a QUIT) into few. An edge does both itself after a
/// login, but an edge on its SAS may delete nothing; the retention run holds the account key.
/// </summary>
/// <remarks>
/// The rules are the edge's: a marker is dropped only when its key is older than the oldest message of the mailbox
/// (keys grow with commit time and retention removes the oldest first), and a merge replaces records under their ETags,
/// so a QUIT or a sweep meanwhile is never undone. A mailbox with no message keeps its markers.
/// </remarks>
public sealed class ViewUpkeep(IClientViewStore views, ISpoolReader spool)
{
    /// <summary>Sweeps and merges every view of <paramref name="mailbox"/>; returns the markers dropped and the records merged.</summary>
    public async Task<(int Swept, int Merged)> RunAsync(string mailbox, CancellationToken cancellationToken)
    {
        var names = await views.ListViewsAsync(mailbox, cancellationToken).ConfigureAwait(false);
        if (names.Count == 0)
            return (0, 0);
        var oldest = await spool.FirstKeyAsync(mailbox, cancellationToken).ConfigureAwait(false);
        var swept = 0;
        var merged = 0;
        foreach (var view in names)
        {
            // Listing first also tells the store how many small records the view has, which the merge needs.
            var hidden = await views.ListHiddenAsync(mailbox, view, cancellationToken).ConfigureAwait(false);
            if (oldest is not null)
            {
                var stale = StaleMarkers(hidden, oldest);
                if (stale.Count > 0)
                {
                    await views.ForgetAsync(mailbox, view, stale, cancellationToken).ConfigureAwait(false);
                    swept += stale.Count;
                }
            }
            merged += await views.CompactAsync(mailbox, view, cancellationToken).ConfigureAwait(false);
        }
        return (swept, merged);
    }

    /// <summary>
    /// The hidden keys whose messages retention removed: those older than the oldest message of the mailbox (keys grow
    /// with commit time and retention removes the oldest first, so nothing still in the spool is older).
    /// </summary>
    public static List<string> StaleMarkers(IEnumerable<string> hidden, string oldest) =>
        hidden.Where(k => string.CompareOrdinal(k, oldest) < 0).ToList();
}
