using CloudSpool.Core.Spool;

namespace CloudSpool.Edge;

/// <summary>What one sync of an index changed.</summary>
/// <param name="Added">Entries new to the index, in key order.</param>
/// <param name="Removed">Keys dropped from the index.</param>
/// <param name="Full">Whether the whole mailbox was listed.</param>
public sealed record IndexSyncResult(IReadOnlyList<SpoolIndexEntry> Added, IReadOnlyList<string> Removed, bool Full);

/// <summary>
/// The local index of one mailbox: every message's key, UIDL, sizes and blob, so STAT, LIST and UIDL are answered
/// without touching storage. Kept fresh by range queries from the newest key (minus a look-back), trimmed from the
/// oldest key (retention removes by age), compared with the whole mailbox now and then, and persisted locally so
/// a restart does not re-list the mailbox.
/// </summary>
/// <remarks>
/// Thread-safe: syncs are serialized; readers take <see cref="Snapshot"/>, an immutable array replaced on change.
/// </remarks>
public sealed class MailboxIndex
{
    private readonly SemaphoreSlim _sync = new(1, 1);
    private readonly IndexFile? _file;
    private readonly TimeProvider _clock;
    private SpoolIndexEntry[] _entries = [];
    private string? _changeToken;

    internal MailboxIndex(string mailbox, string? path, TimeProvider clock)
    {
        Mailbox = mailbox;
        _clock = clock;
        if (path is not null)
        {
            _file = new IndexFile(path, mailbox);
            if (_file.Load() is { } loaded)
            {
                _entries = loaded;
                LoadedFromDisk = true;
            }
        }
    }

    public string Mailbox { get; }

    /// <summary>Whether the index was read from its file at start (not yet confirmed by a full listing).</summary>
    public bool LoadedFromDisk { get; }

    /// <summary>The messages of the mailbox in key order, as of the last sync. Never changes once returned.</summary>
    public IReadOnlyList<SpoolIndexEntry> Snapshot => Volatile.Read(ref _entries);

    /// <summary>When the last sync succeeded; null before the first.</summary>
    public DateTimeOffset? LastSync { get; private set; }

    /// <summary>When the whole mailbox was last listed; null before the first time.</summary>
    public DateTimeOffset? LastFullSync { get; private set; }

    /// <summary>
    /// Brings the index up to date: the whole mailbox when <paramref name="full"/> (or the index is empty),
    /// otherwise what was committed since the newest key minus <paramref name="lookback"/>, and trims what
    /// retention removed. A sync already running is awaited instead of starting another. An incremental sync first
    /// reads the mailbox's change token and stops there when it is the one seen at the last sync (nothing was
    /// committed or removed since): one point read instead of two queries, which on Azurite scan the whole table.
    /// </summary>
    public async Task<IndexSyncResult> SyncAsync(ISpoolReader spool, TimeSpan lookback, bool full, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spool);
        var started = _clock.GetUtcNow();
        await _sync.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!full && LastSync is { } last && last >= started)
                return new IndexSyncResult([], [], false); // another caller synced while this one waited
            // Read before listing: whatever commits after this read changes the token again, so the next sync looks.
            var token = await spool.ChangeTokenAsync(Mailbox, cancellationToken).ConfigureAwait(false);
            if (!full && token is not null && string.Equals(token, _changeToken, StringComparison.Ordinal))
            {
                LastSync = started;
                return new IndexSyncResult([], [], false);
            }
            var current = Snapshot;
            full |= current.Count == 0;
            var from = full ? null : SpoolKeys.Rewind(current[^1].MessageKey, lookback);
            // An incremental sync also needs the oldest key (to trim what retention removed): asked alongside the listing.
            var firstTask = full ? null : spool.FirstKeyAsync(Mailbox, cancellationToken);
            var listed = new List<SpoolIndexEntry>(full ? current.Count + 64 : 64);
            try
            {
                // A full listing is taken in storage's order and put in key order here: in key order, storage would hold
                // decoded rows of much of the mailbox until the end, beside this index and the list being built.
                var entries = full ? spool.ScanIndexAsync(Mailbox, cancellationToken) : spool.ListIndexAsync(Mailbox, from, cancellationToken);
                await foreach (var entry in entries.ConfigureAwait(false))
                    listed.Add(full ? Held(current, entry) : entry);
            }
            catch when (firstTask is not null)
            {
                _ = firstTask.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                throw;
            }
            if (full)
                InKeyOrder(listed);

            IndexSyncResult result;
            if (full)
            {
                var (added, removed) = Differences(current, listed);
                Volatile.Write(ref _entries, [.. listed]);
                _file?.Rewrite(listed);
                LastFullSync = started;
                result = new IndexSyncResult(added, removed, true);
            }
            else
            {
                // Retention removes by age, oldest first: everything before the oldest key left is gone (and an
                // empty mailbox has no oldest key).
                var first = await firstTask!.ConfigureAwait(false);
                bool Gone(SpoolIndexEntry e) => first is null || string.CompareOrdinal(e.MessageKey, first) < 0;
                var added = listed.Where(e => !Gone(e) && Find(current, e.MessageKey) < 0).ToList();
                var gone = 0;
                while (gone < current.Count && Gone(current[gone]))
                    gone++;
                var removed = current.Take(gone).Select(e => e.MessageKey).ToList();
                if (added.Count > 0 || removed.Count > 0)
                {
                    Volatile.Write(ref _entries, Merge(current, gone, added));
                    _file?.Append(added, removed, () => Snapshot);
                }
                result = new IndexSyncResult(added, removed, false);
            }
            LastSync = started;
            _changeToken = token;
            return result;
        }
        finally
        {
            _sync.Release();
        }
    }

    /// <summary>
    /// The held entry equal to <paramref name="entry"/>, else <paramref name="entry"/>. After a restart, the index read
    /// from disk and the first full listing would otherwise both be held, each with its strings, until the listing is done.
    /// </summary>
    private static SpoolIndexEntry Held(IReadOnlyList<SpoolIndexEntry> held, SpoolIndexEntry entry) =>
        Find(held, entry.MessageKey) is >= 0 and var at && held[at] == entry ? held[at] : entry;

    /// <summary>Where <paramref name="key"/> is in entries in key order; negative when it is not there.</summary>
    /// <remarks>The index is searched rather than mirrored in a set of its keys, which would cost about 30 bytes a message.</remarks>
    private static int Find(IReadOnlyList<SpoolIndexEntry> entries, string key)
    {
        int low = 0, high = entries.Count - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) >> 1);
            var order = string.CompareOrdinal(entries[middle].MessageKey, key);
            if (order == 0)
                return middle;
            if (order < 0)
                low = middle + 1;
            else
                high = middle - 1;
        }
        return -1;
    }

    /// <summary>What a full listing (in key order, each key once) adds to the index and removes from it.</summary>
    private static (List<SpoolIndexEntry> Added, List<string> Removed) Differences(IReadOnlyList<SpoolIndexEntry> held, List<SpoolIndexEntry> listed)
    {
        var added = new List<SpoolIndexEntry>();
        var removed = new List<string>();
        int i = 0, j = 0;
        while (i < held.Count || j < listed.Count)
        {
            var order = i == held.Count ? 1 : j == listed.Count ? -1 : string.CompareOrdinal(held[i].MessageKey, listed[j].MessageKey);
            if (order < 0)
                removed.Add(held[i++].MessageKey);
            else if (order > 0)
                added.Add(listed[j++]);
            else
                (i, j) = (i + 1, j + 1);
        }
        return (added, removed);
    }

    /// <summary>The held entries from <paramref name="from"/> on with <paramref name="added"/> (in key order, none held), in key order.</summary>
    private static SpoolIndexEntry[] Merge(IReadOnlyList<SpoolIndexEntry> held, int from, List<SpoolIndexEntry> added)
    {
        var merged = new List<SpoolIndexEntry>(held.Count - from + added.Count);
        int i = from, j = 0;
        while (i < held.Count || j < added.Count)
        {
            var next = j == added.Count || (i < held.Count && string.CompareOrdinal(held[i].MessageKey, added[j].MessageKey) <= 0) ? held[i++] : added[j++];
            if (merged.Count == 0 || string.CompareOrdinal(merged[^1].MessageKey, next.MessageKey) < 0)
                merged.Add(next); // a key listed twice is kept once
        }
        return [.. merged];
    }

    /// <summary>Sorts a listing by key (when it is not in order already) and keeps the first of any key listed twice.</summary>
    private static void InKeyOrder(List<SpoolIndexEntry> listed)
    {
        static int ByKey(SpoolIndexEntry a, SpoolIndexEntry b) => string.CompareOrdinal(a.MessageKey, b.MessageKey);
        var ordered = true;
        for (var i = 1; i < listed.Count && ordered; i++)
            ordered = ByKey(listed[i - 1], listed[i]) < 0;
        if (ordered)
            return;
        var sorted = listed.OrderBy(e => e.MessageKey, StringComparer.Ordinal).ToList(); // stable: the first of one key stays first
        listed.Clear();
        foreach (var e in sorted)
        {
            if (listed.Count == 0 || ByKey(listed[^1], e) != 0)
                listed.Add(e);
        }
    }
}
