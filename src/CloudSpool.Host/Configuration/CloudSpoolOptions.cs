namespace CloudSpool.Host.Configuration;

/// <summary>The whole configuration: a JSON file plus CLOUDSPOOL__Section__Key environment variables.</summary>
public sealed class CloudSpoolOptions
{
    public StorageOptions Storage { get; set; } = new();
    public PullOptions Pull { get; set; } = new();
    public SchedulerOptions Scheduler { get; set; } = new();
    public RetentionOptions Retention { get; set; } = new();
    public EdgeOptions Edge { get; set; } = new();
    public HealthOptions Health { get; set; } = new();
    public StatusPageOptions StatusPage { get; set; } = new();

    /// <summary>Forwarding to a phone (issue 4); see <see cref="Core.Forward.ForwardOptions"/>.</summary>
    public Core.Forward.ForwardOptions Forward { get; set; } = new();

    public TelemetryOptions Telemetry { get; set; } = new();

    /// <summary>What secret references (account passwords, the relay's) may name.</summary>
    public SecretsOptions Secrets { get; set; } = new();
}

/// <summary>
/// Where the secrets that references name may live: <c>file:</c> references only inside <see cref="Directory"/>,
/// <c>env:</c> references only to variables named with <see cref="EnvironmentPrefix"/>; checked when a reference is
/// stored and when it is used (see <see cref="Core.Accounts.SecretPolicy"/>).
/// </summary>
public sealed class SecretsOptions
{
    /// <summary>The secrets directory (absolute); null: $XDG_CONFIG_HOME/cloudspool/secrets, i.e. ~/.config/cloudspool/secrets.</summary>
    public string? Directory { get; set; }

    /// <summary>The prefix every variable an env: reference names must start with.</summary>
    public string EnvironmentPrefix { get; set; } = Core.Accounts.SecretPolicy.DefaultEnvironmentPrefix;

    /// <summary>The rule these settings make.</summary>
    public Core.Accounts.SecretPolicy Policy() => new(Directory ?? Core.Accounts.SecretPolicy.DefaultDirectory, EnvironmentPrefix);
}

/// <summary>Metrics through OpenTelemetry (OTLP over HTTP), off unless an endpoint is configured.</summary>
public sealed class TelemetryOptions
{
    /// <summary>
    /// Base URL of an OTLP/HTTP receiver (an OpenTelemetry Collector, Prometheus with OTLP enabled, ...), e.g.
    /// http://127.0.0.1:4318; metrics go to its /v1/metrics. Null or empty: no export.
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>How often metrics are exported; a one-shot command (`job run`) also exports once when it ends.</summary>
    public TimeSpan ExportInterval { get; set; } = TimeSpan.FromSeconds(60);
}

/// <summary>The status page and health endpoint (served by `run`, `worker` and `edge`).</summary>
public sealed class StatusPageOptions
{
    /// <summary>Whether the hosts serve the page and /healthz.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>IP address to listen on; default loopback only.</summary>
    public string Listen { get; set; } = "127.0.0.1";

    /// <summary>HTTP port; 0 picks a free port (logged).</summary>
    public int Port { get; set; } = 8110;

    /// <summary>
    /// Serve HTTPS instead of HTTP, with the edge's certificate (Edge:CertificatePath, else the one generated and kept in
    /// Edge:StateDirectory); its fingerprint is logged at start.
    /// </summary>
    public bool Https { get; set; }

    /// <summary>POP3 users (`cloudspool user add`) who may log in with their POP3 password; empty: nobody.</summary>
    public List<string> Users { get; set; } = [];

    /// <summary>Time between automatic reloads of the page (whole seconds: a refresh header counts seconds).</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How many of the newest messages the page lists per mailbox.</summary>
    public int RecentMessages { get; set; } = 15;
}

/// <summary>The health job: account health turned into alert mail in the owner's mailbox.</summary>
public sealed class HealthOptions
{
    /// <summary>When the health job runs (Quartz cron); editable with `schedule set health`.</summary>
    public string Schedule { get; set; } = "0 */5 * * * ?";

    /// <summary>Time zone of the schedule; default Pull:TimeZone.</summary>
    public string? TimeZone { get; set; }

    /// <summary>An account failing for this long (since its last success) raises an alert.</summary>
    public TimeSpan FailingAfter { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>An account with no successful check for this long raises an alert, whatever its runs say.</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// A scheduled job with no run recorded this long after a fire time its schedule gave is reported overdue (its
    /// trigger stopped firing: no worker, a stuck scheduler) by `status`, `schedule list` and the status page.
    /// </summary>
    public TimeSpan JobOverdueAfter { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>An upstream mailbox this full (percent of its quota: the server's, or the account's --quota) raises an alert.</summary>
    public int QuotaWarnPercent { get; set; } = 80;
}

/// <summary>The POP3 edge (`cloudspool edge`, and inside `cloudspool run`).</summary>
public sealed class EdgeOptions
{
    /// <summary>Whether `cloudspool run` starts the edge (`cloudspool edge` always does).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>IP address to listen on; default loopback only.</summary>
    public string Listen { get; set; } = "127.0.0.1";

    /// <summary>Plain POP3 port (STLS when a certificate is configured); 0 picks a free port (logged).</summary>
    public int Port { get; set; } = 1110;

    /// <summary>Implicit-TLS (POP3S) port, when wanted (with the configured or the generated certificate).</summary>
    public int? ImplicitTlsPort { get; set; }

    /// <summary>PEM certificate (chain) for STLS and the implicit-TLS port; null: a self-signed one generated on the first start and kept in <see cref="StateDirectory"/>.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key of the certificate; default: in the certificate file.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Networks (CIDR) whose clients may log in without TLS; null means loopback only (127.0.0.0/8, ::1/128).</summary>
    public List<string>? PlaintextAuthNetworks { get; set; }

    /// <summary>Sessions served at once.</summary>
    public int MaxSessions { get; set; } = 100;

    /// <summary>
    /// Sessions served at once for one client address (IPv6 per /64), loopback included: one LAN host reconnecting
    /// cannot hold every slot of <see cref="MaxSessions"/>. Above <see cref="MaxSessions"/> it changes nothing.
    /// </summary>
    public int MaxSessionsPerAddress { get; set; } = 10;

    /// <summary>
    /// Folder of the edge's local state (the generated TLS certificate; index of each mailbox, blob cache); default
    /// $STATE_DIRECTORY (set by systemd) or ~/.local/state/cloudspool/edge. Each storage account and name prefix gets
    /// its own sub-folder for the index and cache; the certificate is the machine's, at the top.
    /// </summary>
    public string? StateDirectory { get; set; }

    /// <summary>
    /// Size of the local blob cache in MiB; 0 reads every message from Blob (proven before it is sent); null (the default)
    /// lets it grow to what the spool needs within <see cref="CacheDiskPercent"/> of the state directory's disk.
    /// </summary>
    public int? CacheMegabytes { get; set; }

    /// <summary>With CacheMegabytes null: the share (percent) of the disk's space, free plus the cache's own, the cache may use.</summary>
    public int CacheDiskPercent { get; set; } = 50;

    /// <summary>With CacheMegabytes null: the disk space in MiB the cache always leaves free.</summary>
    public int CacheReserveMegabytes { get; set; } = 2048;

    /// <summary>How many of the next messages a session reads ahead into the cache when it opens one (0: none).</summary>
    public int ReadAheadMessages { get; set; } = 16;

    /// <summary>How many read-ahead fetches from storage run at once, for all sessions together.</summary>
    public int ReadAheadFetches { get; set; } = 8;

    /// <summary>Time between background syncs of each mailbox's index (new mail appears within this).</summary>
    public TimeSpan SyncInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Time between full comparisons of an index with its mailbox.</summary>
    public TimeSpan ReconcileInterval { get; set; } = TimeSpan.FromMinutes(60);

    /// <summary>How far back an incremental sync looks for metadata committed out of order (several pullers, clock skew).</summary>
    public TimeSpan Lookback { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>Whether new mail is copied into the cache ahead of time.</summary>
    public bool Prefetch { get; set; } = true;

    /// <summary>Mailboxes with classic shared deletion: a DELE+QUIT by any client hides the message from every client.</summary>
    public List<string> SharedDeleteMailboxes { get; set; } = [];
}

public sealed class RetentionOptions
{
    /// <summary>Days a message stays in a mailbox's spool after ingest; 0 keeps it forever.</summary>
    public int DefaultDays { get; set; }

    /// <summary>Per-mailbox retention in days, overriding <see cref="DefaultDays"/> (0 keeps forever).</summary>
    public Dictionary<string, int> Mailboxes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>When the retention job runs (Quartz cron); editable with `schedule set retention`.</summary>
    public string Schedule { get; set; } = "0 30 3 * * ?";

    /// <summary>Time zone of the schedule; default Pull:TimeZone.</summary>
    public string? TimeZone { get; set; }

    /// <summary>
    /// After each retention run, check every mailbox for leftovers of crashes: Off, Report (a message whose blob is
    /// missing fails the run), or Fix (also delete blobs no message names).
    /// </summary>
    public CloudSpool.Core.Retention.RepairMode Repair { get; set; } = CloudSpool.Core.Retention.RepairMode.Report;

    /// <summary>Whether the retention job is scheduled at all: some mailbox has a period, or the repair check is on.</summary>
    public bool Scheduled => DefaultDays > 0 || Mailboxes.Values.Any(d => d > 0) || Repair != CloudSpool.Core.Retention.RepairMode.Off;
}

public sealed class StorageOptions
{
    /// <summary>
    /// Azure Storage connection string: with the account key, or a SAS connection string (BlobEndpoint=...;TableEndpoint=...;
    /// SharedAccessSignature=...), or one with a SAS per table and container (TableSas.{table}=...;BlobSas.{container}=...;SwitchSas=...,
    /// what `cloudspool edge-credentials` prints); empty means the embedded Azurite.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>A SAS token (account SAS) used with the endpoints of <see cref="ConnectionString"/> instead of an account key.</summary>
    public string? SasToken { get; set; }

    /// <summary>Prefix of every table and container name (lower-case letters and digits), to share one account.</summary>
    public string NamePrefix { get; set; } = "";

    public AzuriteOptions Azurite { get; set; } = new();
}

public sealed class AzuriteOptions
{
    /// <summary>
    /// Where the embedded Azurite keeps its data. With Storage:ConnectionString set to an Azurite of your own, setting
    /// this to its data folder lets CloudSpool watch its ceiling too.
    /// </summary>
    public string? Location { get; set; }

    /// <summary>
    /// The size in bytes at which Azurite can no longer save one of its databases (V8's longest string). Lower it only
    /// to try the guard.
    /// </summary>
    public long DatabaseLimitBytes { get; set; } = Azurite.AzuriteCapacityGauge.V8MaxStringLength;

    /// <summary>The share of that limit (percent) from which status, the status page and one alert warn.</summary>
    public int WarnPercent { get; set; } = 50;

    /// <summary>The share of that limit (percent) from which pulls refuse new mail (it stays upstream).</summary>
    public int RefusePercent { get; set; } = 80;

    /// <summary>The azurite executable; default: azurite/node_modules/.bin/azurite of the source tree, then PATH.</summary>
    public string? Command { get; set; }

    public int BlobPort { get; set; } = 10000;
    public int QueuePort { get; set; } = 10001;
    public int TablePort { get; set; } = 10002;
}

public sealed class PullOptions
{
    /// <summary>Quartz cron expression used by accounts without their own schedule.</summary>
    public string DefaultSchedule { get; set; } = "0 */5 * * * ?";

    /// <summary>Time zone of schedules that name none.</summary>
    public string TimeZone { get; set; } = "UTC";

    public TimeSpan BaseBackoff { get; set; } = TimeSpan.FromMinutes(1);
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Where messages are staged on their way to the spool; default: the system temp folder.</summary>
    public string? TempDirectory { get; set; }

    /// <summary>Messages larger than this many bytes are left upstream and reported.</summary>
    public long MaxMessageBytes { get; set; } = 256L << 20;

    /// <summary>Network timeout of one upstream command.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Blob lease duration guarding each account's pull (whole seconds, 15-60: what Azure grants).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);
}

public sealed class SchedulerOptions
{
    /// <summary>How often a running host re-reads accounts and schedules from storage.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A fire late by more than this (host asleep, stopped or busy) counts as missed: the job then runs once on return,
    /// not once per missed fire.
    /// </summary>
    public TimeSpan MisfireThreshold { get; set; } = TimeSpan.FromSeconds(10);
}
