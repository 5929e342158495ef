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
            var held = 0;
            try
            {
                await foreach (var entry in spool.ListIndexAsync(Mailbox, from, cancellationToken).ConfigureAwait(false))
                    listed.Add(full ? Held(entry) : entry);
            }
            catch when (firstTask is not null)
            {
                _ = firstTask.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                throw;
            }

            // An entry a full listing lists as it is held is kept as held: after a restart, the index read from disk and the
            // first full listing would otherwise both be held, each with its strings, until the listing is done. Both come
            // in key order. (An incremental listing's entries that are held already are dropped below.)
            SpoolIndexEntry Held(SpoolIndexEntry entry)
            {
                while (held < current.Count && string.CompareOrdinal(current[held].MessageKey, entry.MessageKey) < 0)
                    held++;
                return held < current.Count && current[held] == entry ? current[held] : entry;
            }

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

    private void Replace(SpoolIndexEntry[] entries, HashSet<string> keys)
    {
        lock (_gate)
        {
            _keys = keys;
            Volatile.Write(ref _entries, entries);
        }
    }
}
