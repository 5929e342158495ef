using System.Security.Cryptography;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// A bounded local copy of message blobs, so a LAN client reads at disk speed and cached mail stays readable while
/// storage is unreachable. Files are named by content hash (<c>DIR/ab/abcdef….eml</c>), filled from Blob on demand
/// and ahead of time for new mail, checked against the hash and length recorded at ingest before use, and evicted
/// least recently used first when the cache grows past its size.
/// </summary>
public sealed class BlobCache : IDisposable
{
    private readonly string _directory;
    private readonly long _maxBytes;
    private readonly ISpoolReader _spool;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Dictionary<string, Item> _items = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task> _filling = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private long _bytes;
    private long _uses;

    private sealed class Item(long length, long lastUse)
    {
        public long Length { get; } = length;
        public long LastUse { get; set; } = lastUse;
    }

    public BlobCache(string directory, long maxBytes, ISpoolReader spool, ILogger logger)
    {
        _directory = directory;
        _maxBytes = maxBytes;
        _spool = spool;
        _logger = logger;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, "tmp");
        if (Directory.Exists(temp))
            Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);
        // What an earlier process left is still good (it was checked when written); oldest first as a use order.
        var files = Directory.EnumerateFiles(directory, "*.eml", SearchOption.AllDirectories)
            .Select(f => new FileInfo(f)).OrderBy(f => f.LastWriteTimeUtc);
        foreach (var file in files)
            _items[Path.GetFileNameWithoutExtension(file.Name)] = new Item(file.Length, ++_uses);
        _bytes = _items.Values.Sum(i => i.Length);
        Evict();
    }

    /// <summary>Bytes held now.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

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
            return _items.ContainsKey(entry.Sha256);
    }

    /// <summary>Whether a message fits the cache at all (larger ones are streamed from Blob).</summary>
    public bool Fits(SpoolIndexEntry entry) => entry.RawLength <= _maxBytes / 4;

    /// <summary>
    /// Opens the bytes of a message: from the cache, else fetched into it first (or streamed straight from Blob when
    /// too large to cache). Throws when storage cannot deliver them or they do not match what ingest recorded.
    /// </summary>
    public async Task<Stream> OpenAsync(SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (TryOpenCached(entry) is { } cached)
            return cached;
        if (!Fits(entry))
            return await _spool.OpenContentAsync(entry, cancellationToken).ConfigureAwait(false);
        await FillAsync(entry).WaitAsync(cancellationToken).ConfigureAwait(false);
        return TryOpenCached(entry) ?? throw new IOException($"message {entry.MessageKey} was evicted from the cache as soon as it was fetched");
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

    private string PathOf(string sha256) => Path.Combine(_directory, sha256[..2], sha256 + ".eml");

    private FileStream? TryOpenCached(SpoolIndexEntry entry)
    {
        lock (_gate)
        {
            if (!_items.TryGetValue(entry.Sha256, out var item))
                return null;
            item.LastUse = ++_uses;
        }
        try
        {
            // FileShare.Delete: eviction may remove the name while a session still reads the file. No FileStream buffer
            // (the POP3 transfer reads whole 64 KiB chunks) and no Asynchronous flag (on Linux that only hands each
            // read to the thread pool; a read of a cached file is a page-cache copy).
            return new FileStream(PathOf(entry.Sha256), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0, FileOptions.SequentialScan);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            Forget(entry.Sha256); // removed behind our back: fetch again
            return null;
        }
    }

    /// <summary>One fill per message at a time; it runs to its end even when the caller that started it gives up.</summary>
    private Task FillAsync(SpoolIndexEntry entry)
    {
        lock (_gate)
        {
            if (_filling.TryGetValue(entry.Sha256, out var running))
                return running;
            var task = Task.Run(() => DownloadAsync(entry, _stopping.Token));
            _filling[entry.Sha256] = task;
            _ = task.ContinueWith(_ =>
            {
                lock (_gate)
                    _filling.Remove(entry.Sha256);
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return task;
        }
    }

    private async Task DownloadAsync(SpoolIndexEntry entry, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(_directory, "tmp", Guid.NewGuid().ToString("N"));
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long length = 0;
            await using (var source = await _spool.OpenContentAsync(entry, cancellationToken).ConfigureAwait(false))
            await using (var target = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.Asynchronous))
            {
                var buffer = new byte[64 * 1024];
                int read;
                while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    length += read;
                }
            }
            var sha = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (length != entry.RawLength || !string.Equals(sha, entry.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new InvalidDataException($"the stored bytes of message {entry.MessageKey} do not match what ingest recorded ({length} bytes, SHA-256 {sha}; expected {entry.RawLength} bytes, {entry.Sha256})");
            var path = PathOf(entry.Sha256);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.Move(temp, path, overwrite: true);
            lock (_gate)
            {
                if (_items.TryAdd(entry.Sha256, new Item(length, ++_uses)))
                    _bytes += length;
            }
            Evict();
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private void Forget(string sha256)
    {
        lock (_gate)
        {
            if (_items.Remove(sha256, out var item))
                _bytes -= item.Length;
        }
    }

    /// <summary>Removes least recently used files until the cache is back under 90% of its size.</summary>
    private void Evict()
    {
        List<string> victims;
        lock (_gate)
        {
            if (_bytes <= _maxBytes)
                return;
            var target = _maxBytes / 10 * 9;
            victims = [];
            foreach (var (sha, item) in _items.OrderBy(i => i.Value.LastUse))
            {
                if (_bytes <= target)
                    break;
                victims.Add(sha);
                _bytes -= item.Length;
            }
            foreach (var sha in victims)
                _items.Remove(sha);
        }
        foreach (var sha in victims)
        {
            try
            {
                File.Delete(PathOf(sha));
            }
            catch (IOException ex)
            {
                EdgeLog.EvictFailed(_logger, ex, sha);
            }
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }
}
