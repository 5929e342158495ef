using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Host;
using CloudSpool.Host.Configuration;
using CloudSpool.Storage.Azure;
using CloudSpool.Upstream;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// CloudSpool's real composition (<see cref="Runtime"/>) on the shared Azurite with a private name
/// prefix, plus helpers to define accounts against a <see cref="DovecotServer"/> and read the spool back.
/// </summary>
public sealed class PullHarness : IAsyncDisposable
{
    private readonly string _temp;

    private PullHarness(Runtime runtime, string connectionString, string prefix, string temp)
    {
        Runtime = runtime;
        ConnectionString = connectionString;
        Prefix = prefix;
        _temp = temp;
    }

    public Runtime Runtime { get; }

    /// <summary>Environment for a `cloudspool` child process on the same storage and prefix.</summary>
    public Dictionary<string, string> CliEnvironment(params (string Key, string Value)[] extra)
    {
        var env = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_CONFIG"] = "",
            ["CLOUDSPOOL__Storage__ConnectionString"] = ConnectionString,
            ["CLOUDSPOOL__Storage__NamePrefix"] = Prefix,
            ["CLOUDSPOOL__Pull__TempDirectory"] = _temp,
            ["CLOUDSPOOL__Pull__LeaseDuration"] = "00:00:15",
            ["CLOUDSPOOL__Pull__Timeout"] = "00:00:15",
            // `run` starts the POP3 edge: on a free port, never the fixed default, so parallel tests don't collide.
            ["CLOUDSPOOL__Edge__Port"] = "0",
            // Every host serves the status page: on a free port too.
            ["CLOUDSPOOL__StatusPage__Port"] = "0",
            // The edge keeps its generated certificate, index and cache here instead of the user's ~/.local/state.
            ["CLOUDSPOOL__Edge__StateDirectory"] = Path.Combine(_temp, "edge-cli"),
        };
        foreach (var (k, v) in extra)
            env[k] = v;
        return env;
    }

    /// <summary>Breaks a lease at once, as if its crashed holder's lease had expired.</summary>
    public async Task BreakLeaseAsync(string name)
    {
        var lease = Azure.Storage.Blobs.Specialized.SpecializedBlobExtensions.GetBlobLeaseClient(Runtime.Storage.Leases.GetBlobClient(name));
        try
        {
            await lease.BreakAsync(TimeSpan.Zero);
        }
        catch (Azure.RequestFailedException ex) when (ex.Status is 404 or 409)
        {
            // No blob yet, or no lease on it: nothing to break.
        }
    }
    public string ConnectionString { get; }
    public string Prefix { get; }
    public string TempDirectory => _temp;

    public static async Task<PullHarness> StartAsync()
    {
        var azurite = await SharedAzurite.GetAsync();
        var prefix = SharedAzurite.NewPrefix();
        var temp = Directory.CreateTempSubdirectory("cloudspool-test-pull-").FullName;
        var options = new CloudSpoolOptions
        {
            Storage = new StorageOptions { ConnectionString = azurite.ConnectionString, NamePrefix = prefix },
            Pull = new PullOptions { TempDirectory = temp, BaseBackoff = TimeSpan.FromSeconds(30), MaxBackoff = TimeSpan.FromMinutes(10), Timeout = TimeSpan.FromSeconds(15) },
            Edge = new EdgeOptions { StateDirectory = Path.Combine(temp, "edge") },
        };
        var runtime = await Runtime.StartAsync(options, NullLoggerFactory.Instance, CancellationToken.None);
        return new PullHarness(runtime, azurite.ConnectionString, prefix, temp);
    }

    /// <summary>A second, independent runtime on the same storage, as another worker process would have.</summary>
    public static async Task<PullHarness> AttachAsync(PullHarness first)
    {
        var temp = Directory.CreateTempSubdirectory("cloudspool-test-pull-").FullName;
        var options = new CloudSpoolOptions
        {
            Storage = new StorageOptions { ConnectionString = first.ConnectionString, NamePrefix = first.Prefix },
            Pull = new PullOptions { TempDirectory = temp, Timeout = TimeSpan.FromSeconds(15) },
            Edge = new EdgeOptions { StateDirectory = Path.Combine(temp, "edge") },
        };
        var runtime = await Runtime.StartAsync(options, NullLoggerFactory.Instance, CancellationToken.None);
        return new PullHarness(runtime, first.ConnectionString, first.Prefix, temp);
    }

    /// <summary>
    /// A pull engine on the same storage with another clock (for age-based policies and retention: the spool's
    /// message keys take their commit time from it too) or options; <paramref name="spool"/> may wrap the spool (to watch
    /// or fail its calls).
    /// </summary>
    public PullEngine EngineWith(TimeProvider clock, Func<PullEngineOptions, PullEngineOptions>? configure = null, Func<ISpool, ISpool>? spool = null)
    {
        var options = new PullEngineOptions { TempDirectory = _temp, BaseBackoff = TimeSpan.FromSeconds(30), MaxBackoff = TimeSpan.FromMinutes(10) };
        ISpool azure = new CloudSpool.Storage.Azure.AzureSpool(Runtime.Storage, clock);
        return new PullEngine(Runtime.Connector, spool?.Invoke(azure) ?? azure, Runtime.Ledger, Runtime.States, Runtime.Leases,
            configure?.Invoke(options) ?? options, clock, NullLogger<PullEngine>.Instance);
    }

    /// <summary>An account on the Dovecot server, its password passed through a process environment variable.</summary>
    public static AccountDefinition Account(DovecotServer dovecot, string name, string user, string password, string mailbox,
        UpstreamProtocol protocol = UpstreamProtocol.Pop3, TlsMode tls = TlsMode.None)
    {
        var variable = "CLOUDSPOOL_SECRET_TEST_PW_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, password);
        var port = (protocol, tls) switch
        {
            (UpstreamProtocol.Pop3, TlsMode.Implicit) => dovecot.Pop3sPort,
            (UpstreamProtocol.Pop3, _) => dovecot.Pop3Port,
            (UpstreamProtocol.Imap, TlsMode.Implicit) => dovecot.ImapsPort,
            _ => dovecot.ImapPort,
        };
        return new AccountDefinition
        {
            Name = name,
            Protocol = protocol,
            Host = dovecot.Host,
            Port = port,
            Tls = tls,
            TrustedCertificateFile = tls == TlsMode.None ? null : dovecot.CertificatePemPath,
            Username = user,
            PasswordRef = "env:" + variable,
            Mailbox = mailbox,
        };
    }

    public Task<PullRunRecord> PullAsync(AccountDefinition account) =>
        Runtime.Engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

    public async Task<List<SpoolMessage>> ListAsync(string mailbox)
    {
        var result = new List<SpoolMessage>();
        await foreach (var m in Runtime.SpoolReader.ListAsync(mailbox, null, CancellationToken.None))
            result.Add(m);
        return result;
    }

    public async Task<byte[]> ReadRawAsync(SpoolMessage message)
    {
        await using var stream = await Runtime.SpoolReader.OpenRawAsync(message, CancellationToken.None);
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        await Runtime.DisposeAsync();
        try
        {
            Directory.Delete(_temp, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;
    public override DateTimeOffset GetUtcNow() => Now;
}
