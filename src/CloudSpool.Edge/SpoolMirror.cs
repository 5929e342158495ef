using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// The edge's local side of the spool: one <see cref="MailboxIndex"/> per mailbox and the <see cref="BlobCache"/>,
/// kept fresh by a background loop (incremental syncs every few seconds, a full comparison now and then, new mail
/// fetched into the cache ahead of time). Sessions read from here; storage is touched only to catch up.
/// </summary>
public sealed class SpoolMirror : IAsyncDisposable
{
    private readonly ISpoolReader _spool;
    private readonly IPop3UserStore _users;
    private readonly SpoolEdgeOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, MailboxIndex> _indexes = new(StringComparer.Ordinal);
    private readonly Channel<SpoolIndexEntry> _prefetch = Channel.CreateBounded<SpoolIndexEntry>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite });

    // Messages sessions are about to read, as runs of pack neighbours read with one request: the oldest requests make
    // way for new ones (a session that moved on).
    private readonly Channel<IReadOnlyList<SpoolIndexEntry>> _readAhead = Channel.CreateBounded<IReadOnlyList<SpoolIndexEntry>>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private DateTimeOffset _usersListed = DateTimeOffset.MinValue;
    private IReadOnlyDictionary<string, Pop3User> _listedUsers = new Dictionary<string, Pop3User>(StringComparer.Ordinal);
    private int _disposed;

    public SpoolMirror(ISpoolReader spool, IPop3UserStore users, SpoolEdgeOptions options, ILogger logger, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _spool = spool;
        _users = users;
        _options = options;
        _logger = logger;
        _clock = clock ?? TimeProvider.System;
        Health = new StorageHealth(options.StorageTimeout, _clock);
        if (options.StateDirectory is { } state)
        {
            // One process per state folder: a second edge on the same folder (say `run` and `edge` side by side)
            // keeps its index in memory and reads Blob directly instead of corrupting the first one's files.
            Directory.CreateDirectory(state);
            try
            {
                _stateLock = new FileStream(Path.Combine(state, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                _stateDirectory = state;
            }
            catch (IOException ex)
            {
                EdgeLog.StateDirectoryBusy(logger, ex, state);
            }
        }
        if (_stateDirectory is { } owned && options.CacheBytes is not 0)
        {
            var sizing = options.CacheBytes is { } fixedBytes
                ? CacheSizing.Fixed(fixedBytes)
                : new CacheSizing(null, options.CacheDiskShare, options.CacheReserveBytes);
            Cache = new BlobCache(Path.Combine(owned, "cache"), sizing, spool, logger);
        }
    }

    private readonly FileStream? _stateLock;
    private readonly string? _stateDirectory;

    /// <summary>Whether storage answers, as seen by client-facing calls and the background sync.</summary>
    public StorageHealth Health { get; }

    /// <summary>The blob cache; null when there is no state directory or no cache size.</summary>
    public BlobCache? Cache { get; }

    /// <summary>Indexes held now, by mailbox.</summary>
    public IReadOnlyDictionary<string, MailboxIndex> Indexes => _indexes;

    /// <summary>When the last background sync pass ended without error.</summary>
    public DateTimeOffset? LastSyncPass { get; private set; }

    /// <summary>The index of a mailbox, loaded from its file on first use, once.</summary>
    /// <remarks>
    /// A first login and the background sync at start ask at the same moment, and a dictionary's GetOrAdd may run its
    /// factory for each: each would read the whole file (the index of 100,000 messages is about 50 MB in memory).
    /// </remarks>
    public MailboxIndex IndexOf(string mailbox)
    {
        if (_indexes.TryGetValue(mailbox, out var index))
            return index;
        lock (_indexes)
        {
            return _indexes.GetOrAdd(mailbox, m => new MailboxIndex(m,
                _stateDirectory is { } state ? Path.Combine(state, "index", FileName(m) + ".idx") : null, _clock));
        }
    }

    /// <summary>
    /// The messages of a mailbox for a new session: synced first (bounded by the login-sync timeout), else the index
    /// as it stands when storage is slow or unreachable. Throws only when there is no index to serve at all.
    /// </summary>
    public async Task<IReadOnlyList<SpoolIndexEntry>> SnapshotForLoginAsync(string mailbox, CancellationToken cancellationToken)
    {
        var index = IndexOf(mailbox);
        try
        {
            var result = await Health.CallAsync(ct => index.SyncAsync(_spool, _options.Lookback, full: false, ct), cancellationToken).ConfigureAwait(false);
            QueuePrefetch(result.Added);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            if (index.LastSync is null && !index.LoadedFromDisk)
                throw;
            EdgeLog.ServingStaleIndex(_logger, ex, mailbox, index.LastSync);
        }
        return index.Snapshot;
    }

    /// <summary>
    /// A user as the background sync last listed them (null: no such user), when that listing is recent: no older than
    /// two sync intervals. False when it is older (the loop is not running or storage did not answer): ask storage.
    /// </summary>
    public bool TryGetListedUser(string name, out Pop3User? user)
    {
        user = null;
        if (_clock.GetUtcNow() - _usersListed > 2 * _options.SyncInterval)
            return false;
        user = Volatile.Read(ref _listedUsers).GetValueOrDefault(name);
        return true;
    }

    /// <summary>
    /// A user as the background sync last listed them, however old that listing (null: no such user then); false when
    /// the users were never listed. What a login falls back on while storage does not answer.
    /// </summary>
    public bool TryGetLastListedUser(string name, out Pop3User? user)
    {
        user = null;
        if (_usersListed == DateTimeOffset.MinValue)
            return false;
        user = Volatile.Read(ref _listedUsers).GetValueOrDefault(name);
        return true;
    }

    /// <summary>
    /// Opens a message's bytes, proven against what ingest recorded before any is served: from the cache when there is
    /// one, else fetched from Blob into a private temporary file first.
    /// </summary>
    public async Task<Stream> OpenAsync(SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        if (Cache is { } cache && cache.Contains(entry))
            return await cache.OpenAsync(entry, cancellationToken).ConfigureAwait(false);
        Health.ThrowIfDown();
        try
        {
            return Cache is { } filling
                ? await filling.OpenAsync(entry, cancellationToken).ConfigureAwait(false)
                : await ProvenCopy.OpenStagedAsync(_spool, entry, _options.TempDirectory, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Health.Observe(ex);
            throw;
        }
    }

    /// <summary>Starts the background sync and prefetch loops.</summary>
    public void Start()
    {
        _loops.Add(Task.Run(() => SyncLoopAsync(_stop.Token)));
        if (Cache is { } cache && _options.Prefetch)
        {
            for (var i = 0; i < 2; i++)
                _loops.Add(Task.Run(() => PrefetchLoopAsync(cache, _prefetch.Reader, _stop.Token)));
        }
        if (Cache is { } reading && _options.ReadAheadMessages > 0)
        {
            for (var i = 0; i < _options.ReadAheadFetches; i++)
                _loops.Add(Task.Run(() => ReadAheadLoopAsync(reading, _readAhead.Reader, _stop.Token)));
        }
    }

    /// <summary>
    /// Asks for messages a session is about to read to be fetched into the cache in the background (each proven as any
    /// fill is); what is cached already, or too large for the cache, is left alone. Neighbours in one pack are read
    /// with one range request (<see cref="PackRuns"/>).
    /// </summary>
    public void ReadAhead(IEnumerable<SpoolIndexEntry> next)
    {
        if (Cache is not { } cache || _options.ReadAheadMessages == 0 || Health.IsDown)
            return;
        foreach (var run in PackRuns.Group(next.Where(e => cache.Fits(e) && !cache.Contains(e))))
            _readAhead.Writer.TryWrite(run);
    }

    /// <summary>How many messages after the one opened a session reads ahead.</summary>
    public int ReadAheadMessages => _options.ReadAheadMessages;

    /// <summary>One pass over every known mailbox: what the background loop does every sync interval.</summary>
    public async Task SyncAllAsync(CancellationToken cancellationToken)
    {
        var now = _clock.GetUtcNow();
        var asked = false;
        // Every pass: the users (a handful of rows) for logins to be answered locally, and their mailboxes to keep synced.
        var users = await _users.ListAsync(cancellationToken).ConfigureAwait(false);
        foreach (var user in users)
            IndexOf(user.Mailbox);
        Volatile.Write(ref _listedUsers, users.ToDictionary(u => u.Name, StringComparer.Ordinal));
        _usersListed = now;
        asked = true;
        foreach (var index in _indexes.Values)
        {
            var full = index.LastFullSync is not { } last || now - last >= _options.ReconcileInterval;
            var result = await index.SyncAsync(_spool, _options.Lookback, full, cancellationToken).ConfigureAwait(false);
            asked = true;
            if (result.Added.Count > 0 || result.Removed.Count > 0)
                EdgeLog.IndexSynced(_logger, index.Mailbox, result.Added.Count, result.Removed.Count, result.Full, index.Snapshot.Count);
            QueuePrefetch(result.Added);
        }
        LastSyncPass = _clock.GetUtcNow();
        if (asked)
            Health.Answered();
    }

    private void QueuePrefetch(IReadOnlyList<SpoolIndexEntry> added)
    {
        if (Cache is null || !_options.Prefetch)
            return;
        // Newest first: the mail a client is about to read.
        for (var i = added.Count - 1; i >= 0; i--)
            _prefetch.Writer.TryWrite(added[i]);
    }

    private async Task SyncLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await SyncAllAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
            {
                Health.Observe(ex);
                EdgeLog.SyncFailed(_logger, ex);
            }
            try
            {
                await Task.Delay(_options.SyncInterval, _clock, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static async Task PrefetchLoopAsync(BlobCache cache, ChannelReader<SpoolIndexEntry> queue, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var entry in queue.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                await cache.PrefetchAsync(entry).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task ReadAheadLoopAsync(BlobCache cache, ChannelReader<IReadOnlyList<SpoolIndexEntry>> queue, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var run in queue.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                await cache.PrefetchRunAsync(run).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>A file name for a mailbox: letters, digits, '.', '_' and '-' kept, anything else as %XX.</summary>
    private static string FileName(string mailbox)
    {
        var sb = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(mailbox))
        {
            if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'_' or (byte)'-' || (b == '.' && sb.Length > 0))
                sb.Append((char)b);
            else
                sb.Append('%').Append(b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await _stop.CancelAsync().ConfigureAwait(false);
        _prefetch.Writer.TryComplete();
        _readAhead.Writer.TryComplete();
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Cache?.Dispose();
        _stop.Dispose();
        if (_stateLock is not null)
            await _stateLock.DisposeAsync().ConfigureAwait(false);
    }
}
