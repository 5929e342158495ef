using CloudSpool.Core.Accounts;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Health;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using CloudSpool.Edge;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.Host.Scheduling;
using CloudSpool.Storage.Azure;
using CloudSpool.Upstream;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host;

/// <summary>
/// Everything a command needs, wired once: the store (the configured storage account, or the
/// embedded Azurite), the adapters and the pull engine.
/// </summary>
public sealed class Runtime : IAsyncDisposable
{
    private readonly EmbeddedAzurite? _azurite;
    private readonly OpenTelemetry.Metrics.MeterProvider? _metrics;

    private Runtime(CloudSpoolOptions options, string connectionString, AzureStorage storage, EmbeddedAzurite? azurite, ILoggerFactory loggers)
    {
        Options = options;
        ConnectionString = connectionString;
        Storage = storage;
        _azurite = azurite;
        Loggers = loggers;
        _metrics = Telemetry.StartMetrics(options.Telemetry, loggers.CreateLogger<Runtime>());
        var spool = new AzureSpool(storage);
        Spool = spool;
        SpoolReader = spool;
        Accounts = new AzureAccountStore(storage);
        Ledger = new AzurePullLedger(storage);
        States = new AzurePullStateStore(storage);
        Leases = new BlobLeaseManager(storage, loggers.CreateLogger<BlobLeaseManager>()) { Duration = options.Pull.LeaseDuration };
        Connector = CreateConnector(options);
        var azuriteData = azurite?.Location ?? options.Storage.Azurite.Location;
        var limits = options.Storage.Azurite;
        StoreGauge = azuriteData is null ? null
            : new AzuriteCapacityGauge(azuriteData, limits.DatabaseLimitBytes, limits.WarnPercent / 100.0, limits.RefusePercent / 100.0);
        Secrets = options.Secrets.Policy();
        Engine = new PullEngine(Connector, Spool, Ledger, States, Leases, new PullEngineOptions
        {
            TempDirectory = TempDirectory,
            Secrets = Secrets,
            BaseBackoff = options.Pull.BaseBackoff,
            MaxBackoff = options.Pull.MaxBackoff,
            MaxMessageBytes = options.Pull.MaxMessageBytes,
            DayZone = TimeZoneInfo.FindSystemTimeZoneById(options.Pull.TimeZone),
        }, TimeProvider.System, loggers.CreateLogger<PullEngine>()) { Capacity = StoreGauge };
        AccountValidator = CreateAccountValidator(Secrets);
        StoredAccountValidator = new AccountValidator(s => Cron.IsValid(s));
        Schedules = new AzureScheduleStore(storage);
        JobRuns = new AzureJobRunLog(storage);
        Pop3Users = new AzurePop3UserStore(storage);
        ClientViews = new AzureClientViewStore(storage, TimeProvider.System);
        Alerts = new AzureAlertLedger(storage);
        Health = new HealthRunner(Alerts, Spool, Leases, JobRuns, TimeProvider.System, loggers.CreateLogger<HealthRunner>())
        {
            PhoneMailbox = options.Forward.Configured ? options.Forward.Mailbox : null,
        };
        Retention = new RetentionRunner(new AzureSpoolMaintenance(storage, spool), Leases, JobRuns, TimeProvider.System, loggers.CreateLogger<RetentionRunner>())
        {
            Views = new ViewUpkeep(ClientViews, spool),
        };
        var forwards = new AzureForwardStore(storage, TimeProvider.System);
        ForwardLedger = forwards;
        ForwardControl = forwards;
        var forwardLeases = new BlobLeaseManager(storage, loggers.CreateLogger<BlobLeaseManager>()) { Duration = options.Forward.LeaseDuration };
        var smtp = options.Forward.Smtp;
        Forward = new ForwardRunner(options.Forward, spool, forwards, forwards,
            new SmtpForwardTransport(smtp, () => smtp.Password is null ? null : Secrets.Resolve(smtp.Password)),
            forwardLeases, JobRuns, TimeProvider.System, loggers.CreateLogger<ForwardRunner>())
        {
            StaleSending = options.Forward.LeaseDuration * 2,
            TimeZoneId = options.Forward.TimeZone ?? options.Pull.TimeZone,
            TempDirectory = TempDirectory,
        };
    }

    public CloudSpoolOptions Options { get; }

    /// <summary>The connection string in use (the embedded Azurite's, with its generated key, or the configured one).</summary>
    public string ConnectionString { get; }
    public AzureStorage Storage { get; }
    public ILoggerFactory Loggers { get; }
    public ISpool Spool { get; }
    public ISpoolReader SpoolReader { get; }
    public IAccountStore Accounts { get; }
    public IPullLedger Ledger { get; }
    public IPullStateStore States { get; }
    public ILeaseManager Leases { get; }
    public IUpstreamConnector Connector { get; }
    public PullEngine Engine { get; }

    /// <summary>The embedded store's ceiling, measured; null on a storage account (no such ceiling).</summary>
    public IStoreCapacityGauge? StoreGauge { get; }
    /// <summary>Validates an account about to be stored, its password reference against <see cref="Secrets"/>.</summary>
    public AccountValidator AccountValidator { get; }

    /// <summary>
    /// Validates a stored account before it is scheduled: its shape only. A reference that breaks the secret rule (stored
    /// before it, or under another configuration) leaves the account scheduled, and each run fails saying why (`status`,
    /// an alert), never a silent fallback.
    /// </summary>
    public AccountValidator StoredAccountValidator { get; }

    /// <summary>What secret references may name (Secrets section), checked when stored and when used.</summary>
    public SecretPolicy Secrets { get; }

    /// <summary>Where mail is staged on the local disk (Pull:TempDirectory, else one directory per user in the temp folder): 0700, files 0600.</summary>
    public string TempDirectory => Options.Pull.TempDirectory ?? Core.Security.PrivateFiles.DefaultTempDirectory;
    public IScheduleStore Schedules { get; }
    public IJobRunLog JobRuns { get; }
    public RetentionRunner Retention { get; }
    public IAlertLedger Alerts { get; }
    public HealthRunner Health { get; }

    /// <summary>When accounts' trouble becomes an alert (Health section).</summary>
    public HealthThresholds HealthThresholds => new(Options.Health.FailingAfter, Options.Health.StaleAfter,
        Options.Health.QuotaWarnPercent / 100.0);

    /// <summary>One health run over every account: evaluate, raise and clear alerts, record the run.</summary>
    public async Task<HealthReport> RunHealthAsync(CancellationToken cancellationToken)
    {
        var inputs = new List<HealthInput>();
        foreach (var account in await Accounts.ListAsync(cancellationToken).ConfigureAwait(false))
            inputs.Add(new HealthInput(account, await States.GetStateAsync(account.Name, cancellationToken).ConfigureAwait(false)));
        return await Health.RunAsync(inputs, HealthThresholds, cancellationToken, StoreGauge?.Measure()).ConfigureAwait(false);
    }

    public IPop3UserStore Pop3Users { get; }
    public IClientViewStore ClientViews { get; }
    public ForwardRunner Forward { get; }
    public IForwardLedger ForwardLedger { get; }
    public IForwardControl ForwardControl { get; }

    /// <summary>The POP3 edge's adapters over this runtime's spool, users and views (not started).</summary>
    public SpoolEdge CreateEdge()
    {
        var edge = Options.Edge;
        return new SpoolEdge(Pop3Users, ClientViews, SpoolReader, Leases, new SpoolEdgeOptions
        {
            StateDirectory = EdgeStateDirectory(),
            TempDirectory = TempDirectory,
            CacheBytes = edge.CacheMegabytes * 1024L * 1024L,
            CacheDiskShare = edge.CacheDiskPercent / 100.0,
            CacheReserveBytes = edge.CacheReserveMegabytes * 1024L * 1024L,
            ReadAheadMessages = edge.ReadAheadMessages,
            ReadAheadFetches = edge.ReadAheadFetches,
            SyncInterval = edge.SyncInterval,
            ReconcileInterval = edge.ReconcileInterval,
            Lookback = edge.Lookback,
            Prefetch = edge.Prefetch,
            SharedDeleteMailboxes = edge.SharedDeleteMailboxes.ToHashSet(StringComparer.Ordinal),
        }, Loggers);
    }

    /// <summary>
    /// The edge's local state folder for this storage: the configured (or default) state directory, with one
    /// sub-folder per storage account and name prefix so an index never mixes two spools.
    /// </summary>
    public string EdgeStateDirectory()
    {
        var root = Options.Edge.StateDirectory
                   ?? Environment.GetEnvironmentVariable("STATE_DIRECTORY")?.Split(':')[0]
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state", "cloudspool", "edge");
        // Without the query: a SAS credential puts its token there, and a renewed token is still the same spool.
        var identity = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Storage.Spool.Uri.GetLeftPart(UriPartial.Path)));
        return Path.Combine(root, "spool-" + Convert.ToHexStringLower(identity)[..12]);
    }

    /// <summary>Retention in days per mailbox: every mailbox an account feeds or the configuration names.</summary>
    public async Task<IReadOnlyDictionary<string, int>> RetentionDaysAsync(CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var account in await Accounts.ListAsync(cancellationToken).ConfigureAwait(false))
            result[account.Mailbox] = Options.Retention.DefaultDays;
        foreach (var (mailbox, days) in Options.Retention.Mailboxes)
            result[mailbox] = days;
        return result;
    }

    /// <summary>A short description of where the spool lives, for logs.</summary>
    public string StorageDescription => _azurite is null
        ? "the configured storage account"
        : $"embedded Azurite (blob 127.0.0.1:{_azurite.BlobPort}, table 127.0.0.1:{_azurite.TablePort}, data {_azurite.Location})";

    /// <summary>The upstream connector, with the configured timeout.</summary>
    public static UpstreamConnector CreateConnector(CloudSpoolOptions options) => new() { TimeoutMilliseconds = (int)options.Pull.Timeout.TotalMilliseconds };

    /// <summary>The validator of an account about to be stored, its password reference checked against <paramref name="secrets"/>.</summary>
    public static AccountValidator CreateAccountValidator(SecretPolicy secrets) => new(s => Cron.IsValid(s), secrets);

    /// <summary>
    /// Whether the configured storage can hold anything yet: a storage account always may; the embedded Azurite only
    /// once its data folder has its key (its first start made it). A command that must write nothing (a dry run) reads
    /// no store when there is none, rather than start one.
    /// </summary>
    public static bool StorageMayHoldData(CloudSpoolOptions options) =>
        !string.IsNullOrWhiteSpace(StorageConnection.Effective(options.Storage))
        || File.Exists(Path.Combine(options.Storage.Azurite.Location ?? EmbeddedAzurite.DefaultLocation(), EmbeddedAzurite.KeyFileName));

    /// <summary>
    /// Starts the store (the embedded Azurite when no connection string is configured) and wires every adapter.
    /// <paramref name="createStorage"/> false leaves missing tables and containers missing (a dry run reads, never creates).
    /// </summary>
    public static async Task<Runtime> StartAsync(CloudSpoolOptions options, ILoggerFactory loggers, CancellationToken cancellationToken, bool createStorage = true)
    {
        EmbeddedAzurite? azurite = null;
        var connectionString = StorageConnection.Effective(options.Storage);
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            azurite = await EmbeddedAzurite.StartAsync(options.Storage.Azurite, loggers.CreateLogger<EmbeddedAzurite>(), cancellationToken).ConfigureAwait(false);
            connectionString = azurite.ConnectionString;
        }
        try
        {
            var storage = new AzureStorage(connectionString, options.Storage.NamePrefix);
            // A SAS (the LAN edge's) is not meant to create tables or containers: the worker or an admin command made them.
            if (createStorage && !StorageConnection.IsSas(connectionString))
                await storage.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
            return new Runtime(options, connectionString, storage, azurite, loggers);
        }
        catch
        {
            if (azurite is not null)
                await azurite.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Exports what was counted since the last export (a one-shot `job run` has only this one).
        _metrics?.Dispose();
        if (_azurite is not null)
            await _azurite.DisposeAsync().ConfigureAwait(false);
    }
}
