using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.Host.Scheduling;
using CloudSpool.Mail;
using CloudSpool.Storage.Azure;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host;

/// <summary>
/// Everything a command needs, wired once: the store (the configured storage account, or the
/// embedded Azurite), the adapters and the pull engine.
/// </summary>
public sealed class Runtime : IAsyncDisposable
{
    private readonly EmbeddedAzurite? _azurite;

    private Runtime(CloudSpoolOptions options, AzureStorage storage, EmbeddedAzurite? azurite, ILoggerFactory loggers)
    {
        Options = options;
        Storage = storage;
        _azurite = azurite;
        Loggers = loggers;
        var spool = new AzureSpool(storage);
        Spool = spool;
        SpoolReader = spool;
        Accounts = new AzureAccountStore(storage);
        Ledger = new AzurePullLedger(storage);
        States = new AzurePullStateStore(storage);
        Leases = new BlobLeaseManager(storage, loggers.CreateLogger<BlobLeaseManager>()) { Duration = TimeSpan.FromSeconds(options.Pull.LeaseSeconds) };
        Connector = new MailKitConnector { TimeoutMilliseconds = options.Pull.TimeoutSeconds * 1000 };
        Engine = new PullEngine(Connector, Spool, Ledger, States, Leases, new PullEngineOptions
        {
            TempDirectory = options.Pull.TempDirectory ?? Path.Combine(Path.GetTempPath(), "cloudspool"),
            BaseBackoff = options.Pull.BaseBackoff,
            MaxBackoff = options.Pull.MaxBackoff,
            MaxMessageBytes = options.Pull.MaxMessageBytes,
        }, TimeProvider.System, loggers.CreateLogger<PullEngine>());
        AccountValidator = new AccountValidator(s => Cron.IsValid(s));
    }

    public CloudSpoolOptions Options { get; }
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
    public AccountValidator AccountValidator { get; }

    /// <summary>A short description of where the spool lives, for logs.</summary>
    public string StorageDescription => _azurite is null
        ? "the configured storage account"
        : $"embedded Azurite (blob 127.0.0.1:{_azurite.BlobPort}, table 127.0.0.1:{_azurite.TablePort}, data {_azurite.Location})";

    public static async Task<Runtime> StartAsync(CloudSpoolOptions options, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        EmbeddedAzurite? azurite = null;
        var connectionString = options.Storage.ConnectionString;
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            azurite = await EmbeddedAzurite.StartAsync(options.Storage.Azurite, loggers.CreateLogger<EmbeddedAzurite>(), cancellationToken).ConfigureAwait(false);
            connectionString = azurite.ConnectionString;
        }
        try
        {
            var storage = new AzureStorage(connectionString, options.Storage.NamePrefix);
            await storage.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
            return new Runtime(options, storage, azurite, loggers);
        }
        catch
        {
            if (azurite is not null)
                await azurite.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The account's schedule, or the configured default.</summary>
    public (string Cron, string TimeZone) ScheduleOf(AccountDefinition account) =>
        (account.Schedule ?? Options.Pull.DefaultSchedule, account.TimeZone ?? Options.Pull.TimeZone);

    public async ValueTask DisposeAsync()
    {
        if (_azurite is not null)
            await _azurite.DisposeAsync().ConfigureAwait(false);
    }
}
