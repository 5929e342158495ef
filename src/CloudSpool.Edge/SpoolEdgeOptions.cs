namespace CloudSpool.Edge;

/// <summary>How the edge keeps its local index and blob cache of the spool.</summary>
public sealed class SpoolEdgeOptions
{
    /// <summary>
    /// Folder of the persisted indexes and the blob cache; null keeps the index in memory only and reads every
    /// message from Blob (no cache; each is proven in a temporary file before it is sent).
    /// </summary>
    public string? StateDirectory { get; init; }

    /// <summary>
    /// Where a message is proven before it is sent when there is no cache: a directory of this user only (created 0700,
    /// another user's refused), files 0600. Default: one per user in the system's temp folder.
    /// </summary>
    public string TempDirectory { get; init; } = CloudSpool.Core.Security.PrivateFiles.DefaultTempDirectory;

    /// <summary>
    /// Bytes the blob cache may hold (0: no cache); null sizes it by the disk (<see cref="CacheDiskShare"/>,
    /// <see cref="CacheReserveBytes"/>). Messages larger than a quarter of the limit are read from Blob into a temporary
    /// file, proven, sent and not kept.
    /// </summary>
    public long? CacheBytes { get; init; } = 1L << 30;

    /// <summary>With <see cref="CacheBytes"/> null: the share of the state directory's disk space (free plus what the cache holds) it may use.</summary>
    public double CacheDiskShare { get; init; } = 0.5;

    /// <summary>With <see cref="CacheBytes"/> null: the disk space the cache always leaves free.</summary>
    public long CacheReserveBytes { get; init; } = 2L << 30;

    /// <summary>How often every known mailbox's index is brought up to date in the background.</summary>
    public TimeSpan SyncInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often an index is compared with the whole mailbox (finds rows removed other than by age).</summary>
    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How far before its newest key an incremental sync looks again, for commits that landed out of order.</summary>
    public TimeSpan Lookback { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a storage call may keep a client waiting (a login's sync, its view, its session lease) before the edge
    /// serves what it holds locally.
    /// </summary>
    public TimeSpan StorageTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Whether new mail is copied into the cache ahead of time.</summary>
    public bool Prefetch { get; init; } = true;

    /// <summary>
    /// How many of the next messages a session reads ahead into the cache when it opens one (RETR or TOP), so a client
    /// walking its listing (pipelined or not) finds them fetched in parallel; 0: none.
    /// </summary>
    public int ReadAheadMessages { get; init; } = 16;

    /// <summary>
    /// How many read-ahead fetches run at once, for all sessions together. Each holds one storage request and one 64 KiB
    /// buffer, so this bounds both; a store far away (latency per request) needs more of them than a local one.
    /// </summary>
    public int ReadAheadFetches { get; init; } = 8;

    /// <summary>Mailboxes with classic shared deletion: DELE+QUIT by any client hides the message for every client.</summary>
    public IReadOnlySet<string> SharedDeleteMailboxes { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    private static readonly SpoolEdgeOptionsValidator Validator = new();

    /// <summary>Throws <see cref="ArgumentException"/> listing every broken rule of <see cref="SpoolEdgeOptionsValidator"/>.</summary>
    internal void Validate()
    {
        var result = Validator.Validate(this);
        if (!result.IsValid)
            throw new ArgumentException("invalid edge options: " + string.Join("; ", result.Errors.Select(e => e.ErrorMessage)));
    }
}
