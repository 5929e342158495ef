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
    private readonly object _gate = new();
    private readonly SemaphoreSlim _sync = new(1, 1);
    private readonly IndexFile? _file;
    private readonly TimeProvider _clock;
    private SpoolIndexEntry[] _entries = [];
    private HashSet<string> _keys = new(StringComparer.Ordinal);
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
                _entries = [.. loaded];
                _keys = new HashSet<string>(loaded.Select(e => e.MessageKey), StringComparer.Ordinal);
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
            var listed = new List<SpoolIndexEntry>();
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
                var listedKeys = new HashSet<string>(listed.Select(e => e.MessageKey), StringComparer.Ordinal);
                var added = listed.Where(e => !_keys.Contains(e.MessageKey)).ToList();
                var removed = current.Where(e => !listedKeys.Contains(e.MessageKey)).Select(e => e.MessageKey).ToList();
                Replace([.. listed], listedKeys);
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
                var added = listed.Where(e => !_keys.Contains(e.MessageKey) && !Gone(e)).ToList();
                var removed = current.Where(Gone).Select(e => e.MessageKey).ToList();
                if (added.Count > 0 || removed.Count > 0)
                {
                    var keys = new HashSet<string>(_keys, StringComparer.Ordinal);
                    keys.ExceptWith(removed);
                    keys.UnionWith(added.Select(e => e.MessageKey));
                    var merged = current.Where(e => keys.Contains(e.MessageKey)).Concat(added)
                        .OrderBy(e => e.MessageKey, StringComparer.Ordinal).ToArray();
                    Replace(merged, keys);
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
    private static SpoolIndexEntry Held(IReadOnlyList<SpoolIndexEntry> held, SpoolIndexEntry entry)
    {
        int low = 0, high = held.Count - 1;
        while (low <= high)
        {
            var middle = low + ((high - low) >> 1);
            var order = string.CompareOrdinal(held[middle].MessageKey, entry.MessageKey);
            if (order == 0)
                return held[middle] == entry ? held[middle] : entry;
            if (order < 0)
                low = middle + 1;
            else
                high = middle - 1;
        }
        return entry;
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

    private void Replace(SpoolIndexEntry[] entries, HashSet<string> keys)
    {
        lock (_gate)
        {
            _keys = keys;
            Volatile.Write(ref _entries, entries);
        }
    }
}
