using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Spool;
using CloudSpool.Host;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.TestSupport.Fixtures;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.TestSupport.Soak;

/// <summary>
/// The whole of CloudSpool run together as real processes on loopback, under continuous mail and injected faults,
/// then checked against the design's invariants (issue 7): a private Azurite, a Dovecot upstream receiving mail
/// all along, `cloudspool worker` pulling two accounts (POP3 with leave=delete through a cutting proxy, IMAP keep) and
/// forwarding one mailbox to an aiosmtpd "phone", `cloudspool edge` read by several MailKit clients (deleting and
/// keeping, per-client views), and hostile clients. Used by the suite's short soak test and by `bench/run soak`.
/// </summary>
public sealed partial class SoakRunner : IAsyncDisposable
{
    private const string ForwardMailbox = "alice";
    private const string KeepMailbox = "bob";
    private const string Phone = "phone@soak.test";
    private const string DrainUser = "drainuser";
    private const string KeepUser = "keepuser";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    private readonly SoakOptions _options;
    private readonly string _work;
    private readonly string _prefix = "soak" + Guid.NewGuid().ToString("N")[..8];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly SoakMemory _memory = new();
    private readonly ConcurrentDictionary<string, SoakMessage> _delivered = new(StringComparer.Ordinal);
    private readonly List<CliProcess> _workers = [];
    private readonly HashSet<CliProcess> _stoppedOnPurpose = [];
    private readonly List<string> _faultLog = [];
    private readonly List<SoakPop3Client> _clients = [];
    private readonly CancellationTokenSource _stopClients = new();
    private readonly List<Task> _clientTasks = [];

    private EmbeddedAzurite? _azurite;
    private AzuriteOptions _azuriteOptions = new();
    private DovecotServer? _dovecot;
    private SmtpSinkServer? _smtp;
    private CuttingProxy? _upstreamProxy;
    private CuttingProxy? _clientProxy;
    private CliProcess? _edge;
    private int _edgePort;
    private Dictionary<string, string> _env = [];
    private SoakHostileClients? _hostile;
    private int _workerStarts;
    private DateTime _loadStart;

    private SoakRunner(SoakOptions options)
    {
        _options = options;
        _work = Directory.CreateTempSubdirectory("cloudspool-soak-").FullName;
    }

    /// <summary>Runs one soak and returns its figures and failed checks; never throws for a failed invariant.</summary>
    public static async Task<SoakReport> RunAsync(SoakOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        await using var runner = new SoakRunner(options);
        return await runner.RunCoreAsync(cancellationToken).ConfigureAwait(false);
    }

    private void Log(string line) =>
        _options.Log(string.Create(CultureInfo.InvariantCulture, $"[{_clock.Elapsed.TotalSeconds,7:F1}s] {line}"));

    private async Task<SoakReport> RunCoreAsync(CancellationToken ct)
    {
        var report = new SoakReport();
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var sampler = _memory.RunAsync(TimeSpan.FromSeconds(1), sampling.Token);
        await StartPiecesAsync(ct).ConfigureAwait(false);
        Log($"all pieces running (edge on port {_edgePort}); load for {_options.LoadDuration.TotalSeconds:F0} s, faults {(_options.Faults ? "on" : "off")}");

        _loadStart = DateTime.UtcNow;
        using var load = CancellationTokenSource.CreateLinkedTokenSource(ct);
        load.CancelAfter(_options.LoadDuration);
        var delivering = DeliverAsync(load.Token);
        var faults = _options.Faults ? InjectFaultsAsync(ct) : Task.CompletedTask;
        await delivering.ConfigureAwait(false);
        await faults.ConfigureAwait(false);
        Log($"load over: {_delivered.Count} messages delivered upstream; draining");

        var drained = await DrainAsync(ct).ConfigureAwait(false);
        Log(drained ? "drained: every condition holds" : "drain timed out: the checks below say what is missing");
        await _stopClients.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_clientTasks).ConfigureAwait(false);
        await FinalClientSessionsAsync(ct).ConfigureAwait(false);

        await CheckAsync(report, ct).ConfigureAwait(false);
        await sampling.CancelAsync().ConfigureAwait(false);
        await sampler.ConfigureAwait(false);
        CheckMemory(report);
        if (!report.Passed || _alerts.Count > 0)
            KeepEvidence(report);
        report.Figures.Insert(0, string.Create(CultureInfo.InvariantCulture,
            $"soak: {_clock.Elapsed.TotalSeconds:F0} s wall, load {_options.LoadDuration.TotalSeconds:F0} s, faults {(_options.Faults ? "on" : "off")}, seed {_options.Seed}"));
        foreach (var fault in _faultLog)
            report.Figures.Add("  fault " + fault);
        return report;
    }

    // ---- the pieces ----

    private async Task StartPiecesAsync(CancellationToken ct)
    {
        var location = Path.Combine(_work, "azurite");
        _azurite = await EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, ct).ConfigureAwait(false);
        _azuriteOptions = new AzuriteOptions { Location = location, BlobPort = _azurite.BlobPort, TablePort = _azurite.TablePort, QueuePort = EmbeddedAzurite.FreePort() };
        _memory.TrackMarker(location, "azurite");

        _dovecot = await DovecotServer.StartAsync(ct).ConfigureAwait(false);
        _memory.TrackMarker(_dovecot.Root, "dovecot");
        _dovecot.AddUser(DrainUser, "drain-pw");
        _dovecot.AddUser(KeepUser, "keep-pw");
        _upstreamProxy = new CuttingProxy(_dovecot.Pop3Port);

        _smtp = await SmtpSinkServer.StartAsync().ConfigureAwait(false);
        _memory.TrackMarker("127.0.0.1:" + _smtp.Port.ToString(CultureInfo.InvariantCulture), "aiosmtpd");

        _env = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_CONFIG"] = "",
            ["CLOUDSPOOL__Storage__ConnectionString"] = _azurite.ConnectionString,
            ["CLOUDSPOOL__Storage__NamePrefix"] = _prefix,
            ["CLOUDSPOOL__Pull__TempDirectory"] = Path.Combine(_work, "pull"),
            ["CLOUDSPOOL__Pull__LeaseDuration"] = "00:00:15",
            ["CLOUDSPOOL__Pull__Timeout"] = "00:00:15",
            ["CLOUDSPOOL__Pull__BaseBackoff"] = "00:00:02",
            ["CLOUDSPOOL__Pull__MaxBackoff"] = "00:00:10",
            ["CLOUDSPOOL__Scheduler__RefreshInterval"] = "00:00:02",
            ["CLOUDSPOOL__Edge__Port"] = "0",
            ["CLOUDSPOOL__Edge__StateDirectory"] = Path.Combine(_work, "edge"),
            ["CLOUDSPOOL__Edge__SyncInterval"] = "00:00:02",
            // Every client of the soak, hostile or not, comes from 127.0.0.1, where a LAN has one address per machine.
            ["CLOUDSPOOL__Edge__MaxSessionsPerAddress"] = "100",
            ["CLOUDSPOOL__Forward__Mailbox"] = ForwardMailbox,
            ["CLOUDSPOOL__Forward__Sender"] = SoakMail.ForwardSender,
            ["CLOUDSPOOL__Forward__Destinations__0__Address"] = Phone,
            ["CLOUDSPOOL__Forward__Smtp__Host"] = "127.0.0.1",
            ["CLOUDSPOOL__Forward__Smtp__Port"] = _smtp.Port.ToString(CultureInfo.InvariantCulture),
            ["CLOUDSPOOL__Forward__Smtp__Security"] = "none",
            ["CLOUDSPOOL__Forward__Schedule"] = "*/5 * * * * ?",
            ["CLOUDSPOOL__Forward__LeaseDuration"] = "00:00:15",
            ["CLOUDSPOOL__Forward__BaseBackoff"] = "00:00:02",
            ["CLOUDSPOOL__Forward__MaxBackoff"] = "00:00:10",
            ["CLOUDSPOOL__Forward__MaxAttempts"] = "1000",
            // Whether an odd corpus message is forwardable is the forward tests' business: the soak skips them by rule.
            ["CLOUDSPOOL__Forward__Rules__0__Name"] = "corpus",
            ["CLOUDSPOOL__Forward__Rules__0__Headers__X-Soak-Corpus"] = "*",
            ["CLOUDSPOOL__Forward__Rules__0__Action"] = "skip",
            ["CLOUDSPOOL_SECRET_SOAK_DRAIN_PW"] = "drain-pw",
            ["CLOUDSPOOL_SECRET_SOAK_KEEP_PW"] = "keep-pw",
        };
        Directory.CreateDirectory(Path.Combine(_work, "pull"));

        await CliAsync("account", "add", "drain", "--protocol", "pop3", "--host", "127.0.0.1", "--port", Port(_upstreamProxy.Port), "--tls", "none",
            "--user", DrainUser, "--password-ref", "env:CLOUDSPOOL_SECRET_SOAK_DRAIN_PW", "--mailbox", ForwardMailbox, "--leave", "delete", "--schedule", "*/3 * * * * ?").ConfigureAwait(false);
        await CliAsync("account", "add", "keep", "--protocol", "imap", "--host", "127.0.0.1", "--port", Port(_dovecot.ImapPort), "--tls", "none",
            "--user", KeepUser, "--password-ref", "env:CLOUDSPOOL_SECRET_SOAK_KEEP_PW", "--mailbox", KeepMailbox, "--schedule", "*/4 * * * * ?").ConfigureAwait(false);
        foreach (var user in new[] { ForwardMailbox, KeepMailbox })
        {
            var add = await CliProcess.RunWithInputAsync(_env, user + "-pop-pw\n", "user", "add", user).ConfigureAwait(false);
            if (add.ExitCode != 0)
                throw new InvalidOperationException($"cloudspool user add {user} failed: {add.Stdout}{add.Stderr}");
        }
        // Switched on before any mail: everything delivered from now on is new mail, none of it backlog.
        await CliAsync("forward", "on").ConfigureAwait(false);

        StartWorker();
        _edge = CliProcess.Start(_env, "edge");
        _memory.Track(_edge.Id, "edge");
        _edgePort = await ListeningPortAsync(_edge, ct).ConfigureAwait(false);
        _clientProxy = new CuttingProxy(_edgePort);

        _clients.Add(new SoakPop3Client("alice", "alice-pop-pw", ForwardMailbox, deletes: true, () => _edgePort));
        _clients.Add(new SoakPop3Client("alice+laptop", "alice-pop-pw", ForwardMailbox, deletes: false, () => _edgePort));
        _clients.Add(new SoakPop3Client("alice+phone", "alice-pop-pw", ForwardMailbox, deletes: true, () => _clientProxy.Port));
        _clients.Add(new SoakPop3Client("bob", "bob-pop-pw", KeepMailbox, deletes: false, () => _clientProxy.Port));
        _clients.Add(new SoakPop3Client("bob+tablet", "bob-pop-pw", KeepMailbox, deletes: true, () => _edgePort));
        var interval = 1500;
        foreach (var client in _clients)
            _clientTasks.Add(client.RunAsync(TimeSpan.FromMilliseconds(interval += 250), _stopClients.Token));
    }

    private static string Port(int port) => port.ToString(CultureInfo.InvariantCulture);

    private async Task CliAsync(params string[] args)
    {
        var (code, stdout, stderr) = await CliProcess.RunAsync(_env, args).ConfigureAwait(false);
        if (code != 0)
            throw new InvalidOperationException($"cloudspool {string.Join(' ', args)} exited {code}: {stdout}{stderr}");
    }

    private CliProcess StartWorker()
    {
        var n = ++_workerStarts;
        var env = new Dictionary<string, string>(_env) { ["CLOUDSPOOL__Pull__TempDirectory"] = Path.Combine(_work, "pull", "w" + n) };
        Directory.CreateDirectory(env["CLOUDSPOOL__Pull__TempDirectory"]);
        var worker = CliProcess.Start(env, "worker");
        _memory.Track(worker.Id, "worker");
        lock (_workers)
            _workers.Add(worker);
        return worker;
    }

    private static async Task<int> ListeningPortAsync(CliProcess edge, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var match = EdgeListening().Match(edge.Stderr);
            if (match.Success)
                return int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            if (edge.HasExited || DateTime.UtcNow > deadline)
                throw new InvalidOperationException("cloudspool edge did not listen: " + edge.Stderr);
            await Task.Delay(200, ct).ConfigureAwait(false);
        }
    }

    [GeneratedRegex(@"POP3 edge listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex EdgeListening();

    // ---- load ----

    private async Task DeliverAsync(CancellationToken ct)
    {
        var mail = new SoakMail(_options.Seed, _options.CorpusFiles);
        var random = new Random(_options.Seed + 1);
        while (!ct.IsCancellationRequested)
        {
            var forwarded = random.Next(10) < 6;
            var message = forwarded ? mail.Next(ForwardMailbox, withOdd: true, forwarded: true) : mail.Next(KeepMailbox, withOdd: false, forwarded: false);
            _dovecot!.DeliverRaw(forwarded ? DrainUser : KeepUser, message.Raw);
            _delivered[message.Id] = message;
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(_options.DeliveryInterval.TotalMilliseconds * (0.5 + random.NextDouble())), ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
