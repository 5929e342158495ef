using CloudSpool.Core.Accounts;

namespace CloudSpool.Core.Pull;

/// <summary>Settings of the pull engine.</summary>
public sealed record PullEngineOptions
{
    /// <summary>
    /// Where message bytes are staged between upstream and the spool: a directory of this user only (created 0700,
    /// another user's refused), files 0600. Default: one per user in the system's temp folder.
    /// </summary>
    public string TempDirectory { get; init; } = Security.PrivateFiles.DefaultTempDirectory;

    /// <summary>What account password references may name (checked again at every run).</summary>
    public SecretPolicy Secrets { get; init; } = SecretPolicy.Default;

    /// <summary>Delay before the first retry after a failed run; doubles with each failure.</summary>
    public TimeSpan BaseBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Cap of the backoff: a failing account is retried at least this often, forever.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The zone whose calendar day "pulled today" counts (the account state's Today figures).</summary>
    public TimeZoneInfo DayZone { get; init; } = TimeZoneInfo.Utc;

    /// <summary>How often long imports report progress.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Messages larger than this (by the server's count) are left upstream and reported.</summary>
    public long MaxMessageBytes { get; init; } = 256L << 20;

    /// <summary>
    /// How many seen-ledger entries are written together (in chunk rows of 100, one transaction). After a crash, the
    /// messages stored since the last write are fetched again by the next run and recognised by their dedup key.
    /// </summary>
    public int SeenBatchSize { get; init; } = 200;

    /// <summary>How many messages are being written to the spool while the next ones are fetched.</summary>
    public int StoreConcurrency { get; init; } = 32;

    /// <summary>How many bytes of staged messages may wait for their write and commit (small ones wait in memory).</summary>
    public long StoreBytesInFlight { get; init; } = 16L << 20;

    /// <summary>How many messages' metadata are committed in one transaction (at most 49: 100 entities); also the most messages in a pack.</summary>
    public int CommitBatchSize { get; init; } = 49;

    /// <summary>
    /// Messages up to this size are written together in packs (one storage request for many small messages); larger ones
    /// get a blob of their own. 0 writes every message on its own.
    /// </summary>
    public long PackMessageBytes { get; init; } = 2L << 20;

    /// <summary>
    /// Messages up to this size wait for their write in memory; larger ones in a temporary file (a 50 MB message never
    /// sits whole in memory). What waits is bounded by <see cref="StoreBytesInFlight"/>. 0 stages every message in a file.
    /// </summary>
    public long StageInMemoryBytes { get; init; } = 8L << 20;

    /// <summary>A pack is written once it holds this many bytes (or <see cref="CommitBatchSize"/> messages).</summary>
    public long PackBytes { get; init; } = 8L << 20;

    /// <summary>How often a running pull measures the embedded store again (<see cref="PullEngine.Capacity"/>).</summary>
    public TimeSpan CapacityCheckInterval { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>How a run was started.</summary>
public sealed record PullRunRequest
{
    /// <summary>Manual runs (`cloudspool job run pull`) ignore the failure backoff.</summary>
    public bool IgnoreBackoff { get; init; }

    /// <summary>Receives progress lines of long imports.</summary>
    public IProgress<PullProgress>? Progress { get; init; }
}

/// <summary>Progress of a run, reported every few seconds.</summary>
public sealed record PullProgress(string Account, string Scope, int Done, int Total, long Bytes);
