using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using CloudSpool.Host;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.TestSupport.Fixtures;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The embedded store's ceiling guard on an Azurite of its own (its database files grow only with this class's
/// writes) with small configured limits: it warns in status and with one alert, it refuses new mail (which stays
/// upstream, whatever the leave policy) before a save could fail, and a pull stopped half-way by it deletes nothing.
/// </summary>
public sealed class StoreGuardTests : IAsyncLifetime
{
    private DovecotServer _dovecot = null!;
    private EmbeddedAzurite _azurite = null!;
    private string _temp = null!;

    public async Task InitializeAsync()
    {
        _temp = Directory.CreateTempSubdirectory("cloudspool-test-guard-").FullName;
        _dovecot = await DovecotServer.StartAsync();
        _azurite = await EmbeddedAzurite.StartPrivateAsync(Path.Combine(_temp, "azurite"), NullLogger.Instance, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _azurite.DisposeAsync();
        await _dovecot.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private CloudSpoolOptions Options(long limitBytes, int warnPercent = 50, int refusePercent = 80) => new()
    {
        Storage = new StorageOptions
        {
            ConnectionString = _azurite.ConnectionString,
            Azurite = new AzuriteOptions { Location = _azurite.Location, DatabaseLimitBytes = limitBytes, WarnPercent = warnPercent, RefusePercent = refusePercent },
        },
        Pull = new PullOptions { TempDirectory = _temp, Timeout = TimeSpan.FromSeconds(15) },
        Edge = new EdgeOptions { StateDirectory = Path.Combine(_temp, "edge") },
    };

    private Dictionary<string, string> Cli(long limitBytes, int warnPercent, int refusePercent) => new()
    {
        ["CLOUDSPOOL_CONFIG"] = "",
        ["CLOUDSPOOL__Storage__ConnectionString"] = _azurite.ConnectionString,
        ["CLOUDSPOOL__Storage__Azurite__Location"] = _azurite.Location,
        ["CLOUDSPOOL__Storage__Azurite__DatabaseLimitBytes"] = limitBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CLOUDSPOOL__Storage__Azurite__WarnPercent"] = warnPercent.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CLOUDSPOOL__Storage__Azurite__RefusePercent"] = refusePercent.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CLOUDSPOOL__Pull__TempDirectory"] = _temp,
        ["CLOUDSPOOL__Edge__StateDirectory"] = Path.Combine(_temp, "edge-cli"),
    };

    /// <summary>The table database's size once Azurite has saved it (every few seconds).</summary>
    private async Task<long> SavedTableBytesAsync()
    {
        var gauge = new AzuriteCapacityGauge(_azurite.Location, long.MaxValue, 0.5, 0.8);
        for (var i = 0; i < 100; i++)
        {
            if (gauge.Measure().Databases.FirstOrDefault(d => d.Name == "table") is { Bytes: > 0 } table)
                return table.Bytes;
            await Task.Delay(200);
        }
        throw new TimeoutException("Azurite saved no table database within 20 s");
    }

    private static async Task<List<SpoolMessage>> ListAsync(Runtime runtime, string mailbox)
    {
        var result = new List<SpoolMessage>();
        await foreach (var m in runtime.SpoolReader.ListAsync(mailbox, null, CancellationToken.None))
            result.Add(m);
        return result;
    }

    [Fact]
    public async Task A_full_store_refuses_new_mail_and_leaves_it_upstream_until_there_is_room()
    {
        _dovecot.AddUser("full", "pw");
        for (var i = 0; i < 3; i++)
            _dovecot.DeliverRaw("full", TestMail.Create($"waits {i}"));
        var account = PullHarness.Account(_dovecot, "full", "full", "pw", "m-full") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        await using (var runtime = await Runtime.StartAsync(Options(limitBytes: 1), NullLoggerFactory.Instance, CancellationToken.None))
        {
            await SavedTableBytesAsync();
            Assert.Equal(StoreCapacityLevel.Refuse, runtime.StoreGauge!.Measure().Level);

            var refused = await runtime.Engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

            Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Storage, 0, 0), (refused.Outcome, refused.ErrorKind, refused.Stored, refused.DeletedUpstream));
            Assert.Contains("too full to take more mail", refused.Error, StringComparison.Ordinal);
            Assert.Contains(StoreCapacity.WayOut, refused.Error, StringComparison.Ordinal);
            Assert.Equal(3, await UpstreamProbe.CountAsync(_dovecot, "full", "pw"));
            Assert.Empty(await ListAsync(runtime, "m-full"));
        }

        await using (var roomy = await Runtime.StartAsync(Options(limitBytes: AzuriteCapacityGauge.V8MaxStringLength), NullLoggerFactory.Instance, CancellationToken.None))
        {
            var run = await roomy.Engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);
            Assert.Equal((RunOutcome.Succeeded, 3, 3), (run.Outcome, run.Stored, run.DeletedUpstream));
            Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "full", "pw"));
        }
    }

    /// <summary>Room for the first measurements, none after: the store fills up while a pull runs.</summary>
    private sealed class FillingGauge(int roomyMeasurements) : IStoreCapacityGauge
    {
        private int _measured;

        public StoreCapacity Measure()
        {
            var bytes = Interlocked.Increment(ref _measured) <= roomyMeasurements ? 10 : 90;
            return new StoreCapacity([new StoreDatabaseUse("table", bytes, 100)], 0.5, 0.8);
        }
    }

    [Fact]
    public async Task A_store_that_fills_up_during_a_pull_stops_it_and_nothing_is_deleted_upstream()
    {
        _dovecot.AddUser("filling", "pw");
        for (var i = 0; i < 12; i++)
            _dovecot.DeliverRaw("filling", TestMail.Create($"message {i}"));
        var account = PullHarness.Account(_dovecot, "filling", "filling", "pw", "m-filling") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        await using var runtime = await Runtime.StartAsync(Options(limitBytes: AzuriteCapacityGauge.V8MaxStringLength), NullLoggerFactory.Instance, CancellationToken.None);
        PullEngine Engine(IStoreCapacityGauge gauge) => new(runtime.Connector, runtime.Spool, runtime.Ledger, runtime.States, runtime.Leases,
            new PullEngineOptions { TempDirectory = _temp, CapacityCheckInterval = TimeSpan.Zero }, TimeProvider.System, NullLogger<PullEngine>.Instance)
        {
            Capacity = gauge,
        };

        // The check before connecting and those before the first four messages find room; the fifth does not.
        var stopped = await Engine(new FillingGauge(roomyMeasurements: 5)).RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Storage, 0), (stopped.Outcome, stopped.ErrorKind, stopped.DeletedUpstream));
        Assert.Contains("too full to take more mail", stopped.Error, StringComparison.Ordinal);
        // What was fetched before the refusal is stored (not lost, not fetched again as new), and all twelve stay upstream.
        Assert.Equal(4, stopped.Stored);
        Assert.Equal(4, (await ListAsync(runtime, "m-filling")).Count);
        Assert.Equal(12, await UpstreamProbe.CountAsync(_dovecot, "filling", "pw"));

        var resumed = await Engine(new FillingGauge(roomyMeasurements: int.MaxValue)).RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);
        Assert.Equal((RunOutcome.Succeeded, 8, 12), (resumed.Outcome, resumed.Stored, resumed.DeletedUpstream));
        Assert.Equal(12, (await ListAsync(runtime, "m-filling")).Count);
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "filling", "pw"));
    }

    [Fact]
    public async Task Past_the_warning_share_status_says_so_and_the_health_job_alerts_once()
    {
        _dovecot.AddUser("warned", "pw");
        var account = PullHarness.Account(_dovecot, "warned", "warned", "pw", "m-warned");
        await using var runtime = await Runtime.StartAsync(Options(limitBytes: AzuriteCapacityGauge.V8MaxStringLength), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.True(await runtime.Accounts.AddAsync(account, CancellationToken.None));
        // A limit ten times the saved database: 10 %, past a warning share of 5 % and far below a refusal share of 90 %.
        var limit = await SavedTableBytesAsync() * 10;
        var env = Cli(limit, warnPercent: 5, refusePercent: 90);

        var status = await CliProcess.RunAsync(env, "status");
        Assert.Equal(0, status.ExitCode);
        Assert.Matches(@"store: WARN  the embedded store \(Azurite\) is filling up: .*table database [\d.]+ MiB of [\d.]+ MiB \(\d+ %\)", status.Stdout);

        Assert.Equal(0, (await CliProcess.RunAsync(env, "job", "run", "health")).ExitCode);
        Assert.Equal(0, (await CliProcess.RunAsync(env, "job", "run", "health")).ExitCode);
        var alerts = (await ListAsync(runtime, "m-warned")).Where(m => m.Summary.Subject?.StartsWith("[CloudSpool]", StringComparison.Ordinal) == true).ToList();
        var alert = Assert.Single(alerts);
        Assert.Equal("[CloudSpool] storage: embedded store filling up", alert.Summary.Subject);

        // With room to spare, status says how full it is, and the next health run tells the owner it recovered.
        var roomy = Cli(AzuriteCapacityGauge.V8MaxStringLength, warnPercent: 50, refusePercent: 80);
        Assert.Matches(@"store: OK  embedded Azurite: .*table database", (await CliProcess.RunAsync(roomy, "status")).Stdout);
        Assert.Equal(0, (await CliProcess.RunAsync(roomy, "job", "run", "health")).ExitCode);
        Assert.Contains(await ListAsync(runtime, "m-warned"), m => m.Summary.Subject == "[CloudSpool] storage: recovered");
    }
}
