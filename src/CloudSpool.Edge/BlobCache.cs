// Longer than the 450 lines a file should keep to: the segmented LRU's use order, the files it governs and their
// proofs change together under one lock, and splitting them would spread that lock across classes.
using CloudSpool.Core.Security;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// A bounded local copy of message blobs, so a LAN client reads at disk speed and cached mail stays readable while
/// storage is unreachable. Files are named by content hash (<c>DIR/ab/abcdef….eml</c>), filled from Blob on demand
/// and ahead of time for new mail, and evicted when the cache grows past its limit (<see cref="CacheSizing"/>: fixed,
/// or a share of the disk).
/// </summary>
/// <remarks>
/// Eviction is a segmented LRU: a file enters on probation, and a second read (a cache hit) moves it to the protected
/// segment (at most 80 % of the limit; its least recently used files go back on probation). Files on probation are
/// evicted first, least recently used first. So one client downloading the whole spool (a scan: every file read once)
/// only cycles the probation segment, and the mail the other clients read again and again stays.
/// </remarks>
/// <remarks>
/// Nothing is served from a file this process has not proven: a fill checks the length and SHA-256 recorded at ingest
/// as it writes, before the rename that publishes it (<see cref="ProvenCopy"/>); a file found at start is hashed at its
/// first use. The proof is remembered with the file's length and write time; an open that finds either
/// changed proves it again. A file that fails is dropped and fetched again. A file that shrinks after its proof ends
/// its read with an error, never early (<see cref="ExactLengthStream"/>).
/// </remarks>
public sealed class BlobCache : IDisposable
{
    /// <summary>The share of the limit the protected segment may hold.</summary>
    private const double ProtectedShare = 0.8;

    private readonly string _directory;
    private readonly CacheSizing _sizing;
    private readonly ISpoolReader _spool;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Dictionary<Sha256Digest, Item> _items = [];
    private readonly Dictionary<Sha256Digest, Task> _filling = [];
    private readonly CancellationTokenSource _stopping = new();
    private long _bytes;
    private long _protectedBytes;
    private long _uses;
    private long _hits;
    private long _misses;
    private long _limit;
    private long _limitMeasured; // Environment.TickCount64 of the last measure; 0: never

    private sealed class Item(long length, long lastUse, FileIdentity? proven = null)
    {
        public long Length { get; } = length;
        public long LastUse { get; set; } = lastUse;

        /// <summary>Read again since it entered: in the protected segment.</summary>
        public bool Protected { get; set; }

        /// <summary>Reads served from it since it entered (a fill ahead of time is not a read).</summary>
        public int Reads { get; set; }

        /// <summary>The file as this process proved it; null until then.</summary>
        public FileIdentity? Proven { get; set; } = proven;
    }

    public BlobCache(string directory, CacheSizing sizing, ISpoolReader spool, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(sizing);
        _directory = directory;
        _sizing = sizing;
        _spool = spool;
        _logger = logger;
        // Mail is private: the cache and its staging folder are this user's only (0700), its files 0600.
        PrivateFiles.EnsureDirectory(directory);
        var temp = Path.Combine(directory, "tmp");
        if (Directory.Exists(temp))
            Directory.Delete(temp, recursive: true);
        PrivateFiles.EnsureDirectory(temp);
        // What an earlier process left is proven at its first use (a power cut or a disk fault may have damaged it);
        // oldest first as a use order.
        var files = Directory.EnumerateFiles(directory, "*.eml", SearchOption.AllDirectories)
            .Select(f => new FileInfo(f)).OrderBy(f => f.LastWriteTimeUtc);
        foreach (var file in files)
        {
            if (Sha256Digest.TryParse(Path.GetFileNameWithoutExtension(file.Name), out var sha))
                _items[sha] = new Item(file.Length, ++_uses);
            else
                file.Delete(); // no message's copy: nothing would ever read or evict it
        }
        _bytes = _items.Values.Sum(i => i.Length);
        Evict();
    }

    /// <summary>Bytes held now.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>How the limit is set.</summary>
    public CacheSizing Sizing => _sizing;

    /// <summary>The most bytes it may hold now (with a disk-sized cache: measured at most once a second).</summary>
    public long LimitBytes
    {
        get
        {
            if (_sizing.FixedBytes is { } bytes)
                return bytes;
            var now = Environment.TickCount64;
            var measured = Interlocked.Read(ref _limitMeasured);
            if (measured != 0 && now - measured < 1000)
                return Interlocked.Read(ref _limit);
            var limit = _sizing.LimitFor(CacheSizing.FreeBytes(_directory), Bytes);
            Interlocked.Exchange(ref _limit, limit);
            Interlocked.Exchange(ref _limitMeasured, now);
            return limit;
        }
    }

    /// <summary>Reads served from a cached file since the start.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Reads that had to fetch from storage since the start (into the cache, or staged when too large for it).</summary>
    public long Misses => Interlocked.Read(ref _misses);

    /// <summary>The cache's figures now.</summary>
    public CacheFigures Figures() => new(Bytes, Count, LimitBytes, _sizing.ToString(), Hits, Misses, DateTimeOffset.UtcNow);

    /// <summary>Where <see cref="SaveFigures"/> writes, for `cloudspool status` in another process on the machine.</summary>
    public static string FiguresPath(string cacheDirectory) => Path.Combine(cacheDirectory, "figures.json");

    private long _figuresSaved; // Environment.TickCount64 of the last save; 0: never

    /// <summary>Writes the figures for `cloudspool status` (at most every 10 s unless <paramref name="force"/>); never throws.</summary>
    public void SaveFigures(bool force = false)
    {
        var now = Environment.TickCount64;
        var saved = Interlocked.Read(ref _figuresSaved);
        if (!force && saved != 0 && now - saved < 10_000)
            return;
        Interlocked.Exchange(ref _figuresSaved, now);
        try
        {
            var temp = Path.Combine(_directory, "tmp", "figures.json");
            File.WriteAllText(temp, System.Text.Json.JsonSerializer.Serialize(Figures()));
            File.Move(temp, FiguresPath(_directory), overwrite: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            EdgeLog.EvictFailed(_logger, ex, "figures.json");
        }
    }

    /// <summary>Messages held now.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
                return _items.Count;
        }
    }

    /// <summary>Whether a message's bytes are in the cache.</summary>
    public bool Contains(SpoolIndexEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_gate)
            return _items.ContainsKey(entry.Digest);
    }

    /// <summary>Whether a message fits the cache at all (larger ones are streamed from Blob).</summary>
    public bool Fits(SpoolIndexEntry entry) => entry.RawLength <= LimitBytes / 4;

    /// <summary>
    /// Opens the proven bytes of a message: from the cache, else fetched into it first (or, when too large to cache,
    /// into a temporary file: <see cref="ProvenCopy.OpenStagedAsync"/>). Throws when storage cannot deliver them or they do not
    /// match what ingest recorded.
    /// </summary>
    public async Task<Stream> OpenAsync(SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        SaveFigures();
        if (await TryOpenCachedAsync(entry, cancellationToken).ConfigureAwait(false) is { } cached)
        {
            Interlocked.Increment(ref _hits);
            return cached;
        }
        Interlocked.Increment(ref _misses);
        if (!Fits(entry))
            return await ProvenCopy.OpenStagedAsync(_spool, entry, Path.Combine(_directory, "tmp"), cancellationToken).ConfigureAwait(false);
        try
        {
            await FillAsync(entry).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NotReadWithRunException)
        {
            // It was being read with its pack neighbours, and that read did not bring it: fetched on its own.
            await FillAsync(entry).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        return await TryOpenCachedAsync(entry, cancellationToken).ConfigureAwait(false)
            ?? throw new IOException($"message {entry.MessageKey} was evicted from the cache as soon as it was fetched");
    }

    /// <summary>Fetches a message into the cache unless it is there; failures are logged, not thrown.</summary>
    public async Task PrefetchAsync(SpoolIndexEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (!Fits(entry) || Contains(entry))
            return;
        try
        {
            await FillAsync(entry).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            EdgeLog.PrefetchFailed(_logger, ex, entry.MessageKey);
        }
    }

    /// <summary>
    /// Fetches neighbouring members of one pack (<see cref="PackRuns"/>) into the cache with one range request, each
    /// proven and published on its own; a run of one is <see cref="PrefetchAsync"/>. Failures are logged, not thrown.
    /// </summary>
    public async Task PrefetchRunAsync(IReadOnlyList<SpoolIndexEntry> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (run.Count == 1)
        {
            await PrefetchAsync(run[0]).ConfigureAwait(false);
            return;
        }
        // The members no one holds or fetches yet are claimed, so a session asking for one of them meanwhile waits for
        // this read instead of starting its own.
        var claimed = new List<(SpoolIndexEntry Entry, TaskCompletionSource Done)>();
        lock (_gate)
        {
            foreach (var entry in run)
            {
                if (!Fits(entry) || _items.ContainsKey(entry.Digest) || _filling.ContainsKey(entry.Digest))
                    continue;
                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _filling[entry.Digest] = done.Task;
                claimed.Add((entry, done));
            }
        }
        if (claimed.Count == 0)
            return;
        try
        {
            await KeepRunAsync(claimed, _stopping.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            EdgeLog.PrefetchFailed(_logger, ex, claimed[0].Entry.MessageKey);
        }
        finally
        {
            lock (_gate)
            {
                foreach (var (entry, done) in claimed)
                {
                    _filling.Remove(entry.Digest);
                    done.TrySetException(new NotReadWithRunException(entry.MessageKey));
                }
            }
        }
    }

    /// <summary>A member of a run that the run's read did not bring into the cache (the read failed, or its bytes did).</summary>
    private sealed class NotReadWithRunException(string messageKey) : IOException($"message {messageKey} was not read with its pack neighbours");

    /// <summary>Reads a run's span in one request into the members' files, each proven and published on its own.</summary>
    private Task KeepRunAsync(List<(SpoolIndexEntry Entry, TaskCompletionSource Done)> members, CancellationToken cancellationToken) =>
        ProvenCopy.ReadRunAsync(_spool, members.ConvertAll(m => m.Entry), Path.Combine(_directory, "tmp"),
            (index, temp, identity) =>
            {
                Publish(members[index].Entry, temp, identity);
                members[index].Done.TrySetResult();
            },
            (index, mismatch) => EdgeLog.PrefetchFailed(_logger, new InvalidDataException(mismatch), members[index].Entry.MessageKey),
            cancellationToken);

    private string PathOf(Sha256Digest sha256)
    {
        var hex = sha256.ToString();
        return Path.Combine(_directory, hex[..2], hex + ".eml");
    }

    /// <summary>
    /// The cached copy of a message, proven; null when there is none (or it failed its proof and was dropped). Its
    /// second read (by any session; filled ahead of time or not) moves it to the protected segment.
    /// </summary>
    private async Task<Stream?> TryOpenCachedAsync(SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        Item? item;
        FileIdentity? proven;
        lock (_gate)
        {
            if (!_items.TryGetValue(entry.Digest, out item))
                return null;
            item.LastUse = ++_uses;
            if (++item.Reads >= 2 && !item.Protected)
                Protect(item);
            proven = item.Proven;
        }
        FileStream file;
        try
        {
            file = ProvenCopy.OpenRead(PathOf(entry.Digest));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            Drop(entry.Digest, item); // removed behind our back: fetch again
            return null;
        }
        try
        {
            var identity = FileIdentity.Of(file.SafeFileHandle);
            if (proven != identity)
            {
                string? mismatch;
                try
                {
                    mismatch = await ProvenCopy.CheckAsync(file, null, entry, cancellationToken).ConfigureAwait(false);
                }
                catch (IOException ex)
                {
                    mismatch = ex.Message; // a disk that cannot read it back
                }
                if (mismatch is not null)
                {
                    EdgeLog.CachedCopyDamaged(_logger, entry.MessageKey, entry.Sha256, mismatch);
                    await file.DisposeAsync().ConfigureAwait(false);
                    Drop(entry.Digest, item);
                    return null;
                }
                lock (_gate)
                    item.Proven = identity;
                file.Position = 0;
            }
            return new ExactLengthStream(file, entry.RawLength);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>One fill per message at a time; it runs to its end even when the caller that started it gives up.</summary>
    private Task FillAsync(SpoolIndexEntry entry)
    {
        lock (_gate)
        {
            if (_filling.TryGetValue(entry.Digest, out var running))
                return running;
            var task = Task.Run(() => KeepAsync(entry, _stopping.Token));
            _filling[entry.Digest] = task;
            _ = task.ContinueWith(_ =>
            {
                lock (_gate)
                    _filling.Remove(entry.Digest);
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return task;
        }
    }

    /// <summary>Fetches a message, proves it and publishes it in the cache under its hash.</summary>
    private async Task KeepAsync(SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(_directory, "tmp", Guid.NewGuid().ToString("N"));
        var identity = await ProvenCopy.DownloadAsync(_spool, entry, temp, cancellationToken).ConfigureAwait(false);
        Publish(entry, temp, identity);
    }

    /// <summary>Renames a proven file into the cache under its hash and counts it (the temporary name is gone after).</summary>
    private void Publish(SpoolIndexEntry entry, string temp, FileIdentity identity)
    {
        try
        {
            var path = PathOf(entry.Digest);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.Move(temp, path, overwrite: true); // a rename keeps the length and write time proven above
            lock (_gate)
            {
                if (_items.TryGetValue(entry.Digest, out var replaced))
                    Forget(entry.Digest, replaced);
                _items[entry.Digest] = new Item(identity.Length, ++_uses, identity);
                _bytes += identity.Length;
            }
            Evict();
        }
        finally
        {
            File.Delete(temp);
        }
    }

    /// <summary>Moves a file read again into the protected segment; past its share, the segment's oldest go back on probation (under the gate).</summary>
    private void Protect(Item item)
    {
        item.Protected = true;
        _protectedBytes += item.Length;
        var cap = (long)(LimitBytes * ProtectedShare);
        if (_protectedBytes <= cap)
            return;
        // Down to 90 % of its share, as eviction goes to 90 % of the limit: the sort over the segment then runs once per
        // tenth of it, not on every read that protects a file once the segment is full.
        var target = cap / 10 * 9;
        foreach (var old in _items.Values.Where(i => i.Protected && i != item).OrderBy(i => i.LastUse).ToList())
        {
            if (_protectedBytes <= target)
                break;
            old.Protected = false;
            old.LastUse = ++_uses; // the newest on probation
            _protectedBytes -= old.Length;
        }
    }

    /// <summary>Takes an item out of the counts (under the gate).</summary>
    private void Forget(Sha256Digest sha256, Item item)
    {
        _items.Remove(sha256);
        _bytes -= item.Length;
        if (item.Protected)
            _protectedBytes -= item.Length;
    }

    /// <summary>Removes a file from the cache, unless another copy took its place meanwhile.</summary>
    private void Drop(Sha256Digest sha256, Item item)
    {
        lock (_gate)
        {
            if (!_items.TryGetValue(sha256, out var held) || held != item)
                return;
            Forget(sha256, item);
        }
        Delete(sha256);
    }

    /// <summary>
    /// Removes files until the cache is back under 90% of its limit: those on probation first, then protected ones, least
    /// recently used first in each.
    /// </summary>
    private void Evict()
    {
        var limit = LimitBytes;
        List<Sha256Digest> victims;
        lock (_gate)
        {
            if (_bytes <= limit)
                return;
            var target = limit / 10 * 9;
            victims = [];
            foreach (var (sha, item) in _items.OrderBy(i => i.Value.Protected).ThenBy(i => i.Value.LastUse).ToList())
            {
                if (_bytes <= target)
                    break;
                victims.Add(sha);
                Forget(sha, item);
            }
        }
        foreach (var sha in victims)
            Delete(sha);
    }

    private void Delete(Sha256Digest sha256)
    {
        try
        {
            File.Delete(PathOf(sha256));
        }
        catch (IOException ex)
        {
            EdgeLog.EvictFailed(_logger, ex, sha256.ToString());
        }
    }

    public void Dispose()
    {
        SaveFigures(force: true);
        _stopping.Cancel();
        _stopping.Dispose();
    }
}
