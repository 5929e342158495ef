using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudSpool.Host.Azurite;
using CloudSpool.TestSupport;
using CloudSpool.TestSupport.Fixtures;
using Microsoft.Extensions.Logging.Abstractions;

// Dovecot, mpop, GNU time and /proc: the bench runs on Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace CloudSpool.Bench;

/// <summary>
/// The pull benchmark: one Dovecot mailbox pulled by mpop into a maildir and by CloudSpool into the
/// spool (on a private Azurite), one after the other in one run; prints wall time, peak memory and their ratio.
/// </summary>
public static partial class Program
{
    private const string MailUser = "bench";
    private const double TargetRatio = 1.25;
    private const long TargetPeakRssBytes = 200L << 20;

    private sealed record Options(int Messages, int Seed, string CloudSpoolDll, string? Source, bool CloudSpoolFirst, bool Timeline, bool KeepTemp, bool Edge, int ListingMessages, bool Trim,
        bool Soak = false, double Minutes = 30, string? Corpus = null, bool Delay = false, int Repeat = 1, string? Against = null,
        bool Scale = false, int Batch = 49, bool Lean = false, bool Restart = true, bool Slices = false, bool Unpacked = false, bool Views = false);

    private sealed record ToolResult(string Tool, int Messages, long Bytes, TimedResult Timed, Dictionary<string, double> CpuSeconds,
        IReadOnlyList<(double Seconds, Dictionary<string, long> Ticks)> Samples, Dictionary<string, long> SampledPeakRssKb, Dictionary<string, long> OtherTicks)
    {
        /// <summary>CloudSpool runs: when each stored message was fetched (its receivedAt in the spool), in order.</summary>
        public IReadOnlyList<DateTimeOffset> Arrivals { get; init; } = [];
    }

    public static async Task<int> Main(string[] args)
    {
        Options options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException ex)
        {
            await Console.Error.WriteLineAsync($"bench: {ex.Message}\n\n{Usage}").ConfigureAwait(false);
            return 2;
        }

        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine(Usage);
            return 0;
        }

        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            cts.Cancel();
        });

        try
        {
            if (options.Delay)
                return await RunDelayAsync(options, cts.Token).ConfigureAwait(false);
            if (options.Scale)
                return await RunScaleAsync(options, cts.Token).ConfigureAwait(false);
            if (options.Soak)
                return await SoakBench.RunAsync(options.Minutes, options.Seed, options.CloudSpoolDll, options.Source, options.Corpus, cts.Token).ConfigureAwait(false);
            return options.Trim ? await TrimBench.RunAsync(options.Messages, options.Seed, cts.Token).ConfigureAwait(false)
                : options.Edge ? await RunEdgeAsync(options, cts.Token).ConfigureAwait(false) : await RunAsync(options, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("bench: interrupted; cleaned up").ConfigureAwait(false);
            return 130;
        }
        catch (BenchException ex)
        {
            await Console.Error.WriteLineAsync($"bench: {ex.Message}").ConfigureAwait(false);
            return 1;
        }
    }

    private const string Usage = """
        usage: CloudSpool.Bench [--messages N] [--seed S] [--repeat R] [--cloudspool PATH/cloudspool.dll] [--source TEXT] [--against PATH/cloudspool.dll] [--cloudspool-first] [--timeline] [--slices] [--keep-temp]
               CloudSpool.Bench edge [--messages N] [--listing-messages N] [--unpacked] [--seed S] [--cloudspool PATH] [--source TEXT] [--keep-temp]
               CloudSpool.Bench trim [--messages N] [--seed S]
               CloudSpool.Bench delay [--messages N] [--seed S] [--cloudspool PATH] [--keep-temp]
               CloudSpool.Bench soak [--minutes M] [--seed S] [--corpus DIR] [--cloudspool PATH] [--source TEXT]
               CloudSpool.Bench scale [--messages N] [--seed S] [--batch B] [--lean] [--no-restart] [--cloudspool PATH] [--source TEXT] [--keep-temp]
          edge                 the edge benchmark: Dovecot and the CloudSpool edge serving the same mailbox
          trim                 the trimming benchmark: the generated mailbox trimmed for a phone on one thread
          delay                the delay benchmark: arrival upstream to delivery at the phone's SMTP server, one-minute pulls (--messages default 5 here)
          soak                 the whole-system soak with faults: load and faults for M minutes (default 30), one
                               fault cycle per 5 minutes, then a drain and the end checks; exit 1 if an invariant broke
          scale                the scale case: N generated messages (default 1000000) written into a private Azurite
                               through the storage adapter as a pull writes them; per tenth: rate, Azurite RSS and databases;
                               then the targets, the databases extrapolated to 1,000,000, a no-loss check and a restart
          --batch B            scale: messages per pack and per commit (default 49, the pull's; at most 49)
          --lean               scale: attachments 10 times smaller (packed and blobbed by their real size), about a fifth of the disk
          --no-restart         scale: skip the restart of Azurite under `cloudspool run` at the end
          --minutes M          soak: minutes of load and faults
          --corpus DIR         soak: odd real-world messages delivered once each (default: tests/corpus/mimekit)
          --unpacked           edge: store every message in a blob of its own (default: as a pull stores a mailbox it finds
                               full: messages up to 2 MiB in packs of at most 49 and 8 MiB, larger ones alone)
          --listing-messages N edge: small messages of the second mailbox whose listing is measured (default 100000; 0 = skip)
          --messages N         messages in the generated mailbox (default 10000)
          --seed S             seed of the generated mailbox (default 2); the same seed gives the same bytes
          --repeat R           pull benchmark: R rounds of both tools on the same mailbox (each round on a fresh maildir and
                               a fresh Azurite); prints every round and the medians (default 1)
          --cloudspool PATH    the cloudspool.dll to measure (default: src/CloudSpool.Host/bin/Release/net10.0/cloudspool.dll)
          --source TEXT        what the measured cloudspool was built from, for the report (bench/run passes the git commit)
          --against PATH       pull benchmark: also run this other cloudspool.dll in every round (on a fresh Azurite of its
                               own; A and B take turns going first) and print its figures beside the measured one's: an A/B
                               comparison of two builds on the same machine in the same minutes (the targets are judged on A)
          --cloudspool-first   run CloudSpool before mpop (default: mpop first)
          --timeline           print CPU use of the tool, Azurite and Dovecot every 5 s of each run
          --slices             pull benchmark: print CloudSpool's rate in each tenth of the messages and the last tenth's over
                               the first's (bench/run --messages 100000 --slices)
          --keep-temp          keep the work folder (maildirs, Azurite data, outputs) for inspection
        Needs root (Dovecot switches to its mail user), mpop, GNU time, Dovecot and Azurite: bench/run installs them.
        """;

    private static Options Parse(string[] args)
    {
        int? messages = null;
        var seed = 2;
        string? dll = null, source = null, against = null;
        bool first = false, timeline = false, keep = false, edge = false, trim = false, soak = false, delay = false;
        double minutes = 30;
        string? corpus = null;
        var listing = 100_000;
        var repeat = 1;
        bool scale = false, lean = false, restart = true, slices = false, unpacked = false, views = false;
        var batch = 49;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--messages":
                    var m = Value();
                    if (!int.TryParse(m, NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1)
                    {
                        throw new ArgumentException($"--messages: '{m}' is not a positive whole number");
                    }

                    messages = count;

                    break;
                case "--seed":
                    var s = Value();
                    if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
                    {
                        throw new ArgumentException($"--seed: '{s}' is not a whole number");
                    }

                    break;
                case "delay":
                    delay = true;
                    break;
                case "trim":
                    trim = true;
                    break;
                case "edge":
                    edge = true;
                    break;
                case "soak":
                    soak = true;
                    break;
                case "scale":
                    scale = true;
                    break;
                case "--lean":
                    lean = true;
                    break;
                case "--no-restart":
                    restart = false;
                    break;
                case "--batch":
                    var b = Value();
                    if (!int.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out batch) || batch is < 1 or > 49)
                    {
                        throw new ArgumentException($"--batch: '{b}' is not a whole number from 1 to 49 (a transaction holds 100 entities)");
                    }

                    break;
                case "--minutes":
                    var mm = Value();
                    if (!double.TryParse(mm, NumberStyles.Float, CultureInfo.InvariantCulture, out minutes) || minutes < 1 || minutes > 24 * 60)
                    {
                        throw new ArgumentException($"--minutes: '{mm}' is not a number of minutes between 1 and 1440");
                    }

                    break;
                case "--repeat":
                    var r = Value();
                    if (!int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out repeat) || repeat is < 1 or > 20)
                    {
                        throw new ArgumentException($"--repeat: '{r}' is not a whole number from 1 to 20");
                    }

                    break;
                case "--corpus":
                    corpus = Path.GetFullPath(Value());
                    break;
                case "--listing-messages":
                    var l = Value();
                    if (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out listing))
                    {
                        throw new ArgumentException($"--listing-messages: '{l}' is not a whole number");
                    }

                    break;
                case "--cloudspool":
                    dll = Path.GetFullPath(Value());
                    break;
                case "--source":
                    source = Value();
                    break;
                case "--against":
                    against = Path.GetFullPath(Value());
                    break;
                case "--cloudspool-first":
                    first = true;
                    break;
                case "--timeline":
                    timeline = true;
                    break;
                case "--slices":
                    slices = true;
                    break;
                case "--unpacked":
                    unpacked = true;
                    break;
                case "--views":
                    views = true;
                    break;
                case "--keep-temp":
                    keep = true;
                    break;
                case "--help" or "-h":
                    break;
                default:
                    throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }

        dll ??= DefaultCloudSpoolDll();
        // The scale case reports tenths of the fill and reads back a sample of 1,000.
        if (scale && messages < 1000)
            throw new ArgumentException($"--messages: {messages} is too few for the scale case (at least 1000)");
        // The delay benchmark waits up to a minute per message: 5 by default, at most 100.
        if (delay && messages > 100)
            throw new ArgumentException($"--messages: {messages} is too many for the delay benchmark (at most 100)");
        return new Options(messages ?? (delay ? 5 : scale ? 1_000_000 : 10_000), seed, dll, source, first, timeline, keep, edge, listing, trim, soak, minutes, corpus, delay, repeat, against,
            scale, batch, lean, restart, slices, unpacked, views);
    }

    private static string DefaultCloudSpoolDll() =>
        Repository.FindRoot(AppContext.BaseDirectory) is { } root
            ? Path.Combine(root, "src", "CloudSpool.Host", "bin", "Release", "net10.0", "cloudspool.dll")
            : Path.GetFullPath("src/CloudSpool.Host/bin/Release/net10.0/cloudspool.dll");

    private static async Task<int> RunAsync(Options options, CancellationToken ct)
    {
        Require(File.Exists(options.CloudSpoolDll), $"{options.CloudSpoolDll} not found: build it (dotnet build src/CloudSpool.Host -c Release) or pass --cloudspool");
        Require(options.Against is null || File.Exists(options.Against), $"--against: {options.Against} not found");
        Require(File.Exists(TimedProcess.TimeBinary), $"{TimedProcess.TimeBinary} (GNU time) not found: apt-get install time");
        var mpop = Which("mpop") ?? throw new BenchException("mpop not found: apt-get install mpop");
        Require(Environment.IsPrivilegedProcess, "must run as root: Dovecot switches to its mail user (bench/run takes care of it)");

        PrintMachine(mpop, options);

        await using var servers = new BenchServers(Directory.CreateTempSubdirectory("cloudspool-bench-"), options.KeepTemp);
        var work = servers.Work;
        var ok = false;
        {
            await servers.StartAsync(ct).ConfigureAwait(false);
            var dovecot = servers.Dovecot!;
            var azurite = servers.Azurite!;
            var azuriteLocation = servers.AzuriteLocation;

            var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            dovecot.AddUser(MailUser, password);
            var azuritePid = ProcStats.AzuritePid(azuriteLocation);
            var dovecotPid = ProcStats.FindByCommandLine(dovecot.ConfigPath, "dovecot") ?? throw new BenchException("Dovecot master process not found");

            var mailbox = Generate(dovecot, options);
            var warm = Stopwatch.StartNew();
            var (count, octets) = await Pop3Probe.WarmUpAsync(dovecot.Host, dovecot.Pop3Port, MailUser, password, ct).ConfigureAwait(false);
            Require(count == options.Messages, $"Dovecot reports {count} messages after delivering {options.Messages}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"dovecot:  {count} messages, {Mib(octets):F1} MiB as served over POP3 (CRLF); indexed by a first session in {warm.Elapsed.TotalSeconds:F1} s"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"azurite:  private instance, disk persistence in the work folder ({azurite.ConnectionString.Split(';').First(p => p.StartsWith("BlobEndpoint", StringComparison.Ordinal))})"));
            Console.WriteLine();

            var roots = new Dictionary<string, int> { ["azurite"] = azuritePid, ["dovecot"] = dovecotPid };
            var warmSampler = new CpuSampler(roots, () => null); // JIT-compiles the sampling code before anything is measured
            await using (warmSampler.ConfigureAwait(false))
            {
                await warmSampler.StopAsync().ConfigureAwait(false);
            }

            var rounds = new List<List<ToolResult>>();
            var azuriteRuns = 1; // Azurite instances started so far (each has a folder of its own)
            for (var round = 1; round <= options.Repeat; round++)
            {
                var roundWork = options.Repeat == 1 ? work.FullName : Directory.CreateDirectory(Path.Combine(work.FullName, $"round{round}")).FullName;
                if (round > 1)
                {
                    TryDelete(Path.Combine(work.FullName, $"round{round - 1}"));
                }

                // With --against, the two builds take turns going first, so a machine getting faster or slower during
                // the round does not favour one of them.
                string[] builds = options.Against is null ? ["cloudspool"] : round % 2 == 1 ? ["cloudspool", "against"] : ["against", "cloudspool"];
                var order = options.CloudSpoolFirst ? [.. builds, "mpop"] : new[] { "mpop" }.Concat(builds).ToArray();
                var results = new List<ToolResult>();
                foreach (var tool in order)
                {
                    if (tool != "mpop" && azuriteRuns++ > 1)
                    {
                        // Each CloudSpool run stores into a fresh Azurite, as the first did: a store already holding an
                        // earlier run's messages is not the same work. What the earlier run stored is deleted (disk space), unless --keep-temp.
                        azurite = await servers.RestartAzuriteAsync(azuriteRuns, ct).ConfigureAwait(false);
                        roots["azurite"] = ProcStats.AzuritePid(servers.AzuriteLocation);
                    }

                    // Each tool starts on a quiet disk: what the generator or the tool before it left dirty in the page cache
                    // is written out first, so neither pays for the other's write-back (both sync what they store).
                    await TimedProcess.RunAsync(["sync"], null, null, ct).ConfigureAwait(false);
                    Console.WriteLine(options.Repeat == 1 ? $"running {tool} ..." : $"round {round} of {options.Repeat}: running {tool} ...");
                    results.Add(tool == "mpop"
                        ? await RunMpopAsync(mpop, dovecot, password, roundWork, roots, ct).ConfigureAwait(false)
                        : await RunCloudSpoolAsync(tool, tool == "against" ? options.Against! : options.CloudSpoolDll, dovecot, password, azurite, roundWork, roots, ct).ConfigureAwait(false));
                }

                rounds.Add(results);
            }

            // The storage floor, on a fresh Azurite of its own: what the served bytes alone cost Azurite (see StorageFloor).
            azurite = await servers.RestartAzuriteAsync(azuriteRuns + 1, ct).ConfigureAwait(false);
            var floorPid = ProcStats.AzuritePid(servers.AzuriteLocation);
            await TimedProcess.RunAsync(["sync"], null, null, ct).ConfigureAwait(false);
            Console.WriteLine("storage floor: uploading the served bytes alone ...");
            var floor = await StorageFloor.MeasureAsync(azurite.ConnectionString, floorPid, octets, ct).ConfigureAwait(false);

            Console.WriteLine();
            ok = rounds.Count == 1 ? Report(options, mailbox, rounds[0]) : ReportRounds(options, mailbox, rounds);
            ok &= StorageFloor.Print(floor,
                Median(rounds.Select(r => r.Single(t => t.Tool == "mpop").Timed.WallSeconds)),
                Median(rounds.Select(r => r.Single(t => t.Tool == "cloudspool").CpuSeconds["dovecot"])),
                Median(rounds.Select(r => r.Single(t => t.Tool == "cloudspool").Timed.WallSeconds)));
            return ok ? 0 : 1;
        }
    }

    /// <summary>
    /// The private Dovecot and Azurite of one run and its work folder: started together (Azurite takes a few seconds),
    /// stopped and deleted whatever happens (kept with --keep-temp).
    /// </summary>
    private sealed class BenchServers(DirectoryInfo work, bool keepTemp) : IAsyncDisposable
    {
        public DirectoryInfo Work => work;

        public string AzuriteLocation { get; private set; } = Path.Combine(work.FullName, "azurite");

        public DovecotServer? Dovecot { get; private set; }

        public EmbeddedAzurite? Azurite { get; private set; }

        public async Task StartAsync(CancellationToken ct)
        {
            var azuriteTask = EmbeddedAzurite.StartPrivateAsync(AzuriteLocation, NullLogger.Instance, ct);
            try
            {
                Dovecot = await DovecotServer.StartAsync(ct).ConfigureAwait(false);
            }
            finally
            {
                // Whatever happens to Dovecot, the Azurite process must be owned here so it gets stopped.
                try
                {
                    Azurite = await azuriteTask.ConfigureAwait(false);
                }
                catch when (Dovecot is null)
                {
                    // Dovecot's failure is the one reported.
                }
            }
        }

        /// <summary>Stops Azurite, deletes its data (kept with --keep-temp) and starts a new one in a folder of its own.</summary>
        public async Task<EmbeddedAzurite> RestartAzuriteAsync(int instance, CancellationToken ct)
        {
            if (Azurite is not null)
            {
                await Azurite.DisposeAsync().ConfigureAwait(false);
                Azurite = null;
                if (!keepTemp)
                {
                    TryDelete(AzuriteLocation); // disk space: every run's data is about as large as the mailbox
                }
            }

            AzuriteLocation = Path.Combine(work.FullName, $"azurite{instance}");
            Azurite = await EmbeddedAzurite.StartPrivateAsync(AzuriteLocation, NullLogger.Instance, ct).ConfigureAwait(false);
            return Azurite;
        }

        public async ValueTask DisposeAsync()
        {
            if (keepTemp)
            {
                Console.WriteLine($"work folder kept: {work.FullName} (Dovecot's maildir: {Dovecot?.Root})");
            }

            if (Azurite is not null)
            {
                await Azurite.DisposeAsync().ConfigureAwait(false);
            }

            if (Dovecot is not null && !keepTemp)
            {
                await Dovecot.DisposeAsync().ConfigureAwait(false);
            }
            else if (Dovecot is not null)
            {
                await Dovecot.StopAsync().ConfigureAwait(false);
            }

            if (!keepTemp)
            {
                TryDelete(work.FullName);
            }
        }
    }

    private sealed record Mailbox(int Messages, long Bytes, Dictionary<MailKind, int> Kinds, long Smallest, long Largest, double Seconds);

    private static Mailbox Generate(DovecotServer dovecot, Options options)
    {
        var clock = Stopwatch.StartNew();
        var generator = new MailboxGenerator(options.Seed);
        var kinds = Enum.GetValues<MailKind>().ToDictionary(k => k, _ => 0);
        long bytes = 0, smallest = long.MaxValue, largest = 0;
        var sizes = new List<int>(options.Messages);
        for (var i = 0; i < options.Messages; i++)
        {
            var (raw, kind) = generator.Next();
            // Via tmp/ into new/, owned by the mail user, as a delivery agent would leave it.
            dovecot.DeliverRaw(MailUser, raw);
            kinds[kind]++;
            bytes += raw.Length;
            smallest = Math.Min(smallest, raw.Length);
            largest = Math.Max(largest, raw.Length);
            sizes.Add(raw.Length);
        }

        sizes.Sort();

        var mailbox = new Mailbox(options.Messages, bytes, kinds, smallest, largest, clock.Elapsed.TotalSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mailbox:  {mailbox.Messages} messages, {Mib(bytes):F1} MiB in maildir files (seed {options.Seed}): {kinds[MailKind.Text]} text, {kinds[MailKind.Html]} HTML, "
            + $"{kinds[MailKind.Attachment]} with a 50 KB-2 MB attachment, {kinds[MailKind.Large]} of about 5 MB; "
            + $"{smallest / 1024.0:F1} KiB to {Mib(largest):F1} MiB, median {sizes[sizes.Count / 2] / 1024.0:F1} KiB; generated in {mailbox.Seconds:F1} s"));
        return mailbox;
    }

    private static async Task<ToolResult> RunMpopAsync(string mpop, DovecotServer dovecot, string password, string work, Dictionary<string, int> roots, CancellationToken ct)
    {
        var dir = Directory.CreateDirectory(Path.Combine(work, "mpop")).FullName;
        var maildir = Path.Combine(dir, "maildir");
        foreach (var sub in new[] { "cur", "new", "tmp" })
        {
            Directory.CreateDirectory(Path.Combine(maildir, sub));
        }

        var passwordFile = Path.Combine(dir, "password");
        File.WriteAllText(passwordFile, password);
        File.SetUnixFileMode(passwordFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var config = Path.Combine(dir, "mpoprc");
        File.WriteAllText(config, $"""
            defaults
            account bench
            host {dovecot.Host}
            port {dovecot.Pop3Port}
            tls off
            auth user
            user {MailUser}
            passwordeval cat {passwordFile}
            keep on
            delivery maildir {maildir}
            uidls_file {Path.Combine(dir, "uidls")}

            """);
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite); // mpop refuses a config others can read

        var timed = await MeasureAsync([mpop, "--file", config, "--quiet", "bench"], new Dictionary<string, string>(), Path.Combine(dir, "time"), roots, ct).ConfigureAwait(false);
        if (timed.Timed.ExitCode != 0)
        {
            throw new BenchException($"mpop failed with exit code {timed.Timed.ExitCode}:\n{timed.Timed.Stdout}{timed.Timed.Stderr}");
        }

        var files = Directory.GetFiles(Path.Combine(maildir, "new")).Concat(Directory.GetFiles(Path.Combine(maildir, "cur"))).ToList();
        var bytes = files.Sum(f => new FileInfo(f).Length);
        return new ToolResult("mpop", files.Count, bytes, timed.Timed, timed.Cpu, timed.Samples, timed.PeakRss, timed.Other);
    }

    private static async Task<ToolResult> RunCloudSpoolAsync(string tool, string cloudSpoolDll, DovecotServer dovecot, string password, EmbeddedAzurite azurite, string work, Dictionary<string, int> roots, CancellationToken ct)
    {
        var dir = Directory.CreateDirectory(Path.Combine(work, tool)).FullName;
        var config = Path.Combine(dir, "cloudspool.json");
        File.WriteAllText(config, "{}\n"); // isolates the run from any ~/.config/cloudspool/cloudspool.json
        var environment = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_CONFIG"] = config,
            ["CLOUDSPOOL__Storage__ConnectionString"] = azurite.ConnectionString,
            ["CLOUDSPOOL__Storage__NamePrefix"] = "b" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            ["CLOUDSPOOL__Pull__TempDirectory"] = Path.Combine(dir, "tmp"),
            ["CLOUDSPOOL_SECRET_BENCH_PW"] = password,
        };
        string[] cli = ["dotnet", cloudSpoolDll];

        var add = await TimedProcess.RunAsync(
            [.. cli, "account", "add", "bench", "--protocol", "pop3", "--host", dovecot.Host, "--port", dovecot.Pop3Port.ToString(CultureInfo.InvariantCulture),
                "--tls", "none", "--user", MailUser, "--password-ref", "env:CLOUDSPOOL_SECRET_BENCH_PW", "--mailbox", "bench", "--leave", "keep"],
            environment, null, ct).ConfigureAwait(false);
        if (add.ExitCode != 0)
        {
            throw new BenchException($"cloudspool account add failed with exit code {add.ExitCode}:\n{add.Stdout}{add.Stderr}");
        }

        var timed = await MeasureAsync([.. cli, "job", "run", "pull", "--account", "bench"], environment, Path.Combine(dir, "time"), roots, ct).ConfigureAwait(false);
        File.WriteAllText(Path.Combine(dir, "pull.out"), timed.Timed.Stdout + "--- stderr ---\n" + timed.Timed.Stderr);
        var match = OkLine().Match(timed.Timed.Stdout);
        if (timed.Timed.ExitCode != 0 || !match.Success)
        {
            throw new BenchException($"cloudspool job run pull failed with exit code {timed.Timed.ExitCode}:\n{timed.Timed.Stdout}{Tail(timed.Timed.Stderr, 40)}");
        }

        var stored = int.Parse(match.Groups["n"].Value, CultureInfo.InvariantCulture);
        var bytes = long.Parse(match.Groups["bytes"].Value, CultureInfo.InvariantCulture);

        // Cross-check in the spool itself, as a user would look.
        var list = await TimedProcess.RunAsync([.. cli, "messages", "list", "--mailbox", "bench", "--json"], environment, null, ct).ConfigureAwait(false);
        if (list.ExitCode != 0)
        {
            throw new BenchException($"cloudspool messages list failed with exit code {list.ExitCode}:\n{Tail(list.Stderr, 20)}");
        }

        using var json = JsonDocument.Parse(list.Stdout);
        var listed = json.RootElement.GetArrayLength();
        if (listed != stored)
        {
            throw new BenchException($"cloudspool reported {stored} new messages but messages list shows {listed}");
        }

        var arrivals = json.RootElement.EnumerateArray().Select(m => m.GetProperty("receivedAt").GetDateTimeOffset()).Order().ToList();
        return new ToolResult(tool, listed, bytes, timed.Timed, timed.Cpu, timed.Samples, timed.PeakRss, timed.Other) { Arrivals = arrivals };
    }

    private static async Task<(TimedResult Timed, Dictionary<string, double> Cpu, IReadOnlyList<(double Seconds, Dictionary<string, long> Ticks)> Samples, Dictionary<string, long> PeakRss, Dictionary<string, long> Other)> MeasureAsync(
        IReadOnlyList<string> command, Dictionary<string, string> environment, string timeFile, Dictionary<string, int> roots, CancellationToken ct)
    {
        var toolPid = 0;
        var sampler = new CpuSampler(roots, () => toolPid == 0 ? null : toolPid);
        await using (sampler.ConfigureAwait(false))
        {
            var timed = await TimedProcess.RunTimedAsync(command, environment, timeFile, pid => Volatile.Write(ref toolPid, pid), ct).ConfigureAwait(false);
            var end = await sampler.StopAsync().ConfigureAwait(false);
            var cpu = roots.Keys.Append("machine").ToDictionary(k => k, k => (end[k] - sampler.Start[k]) / ProcStats.TicksPerSecond);
            cpu["tool user"] = timed.UserSeconds;
            cpu["tool sys"] = timed.SystemSeconds;
            return (timed, cpu, sampler.Samples.ToList(), sampler.PeakRssKb, sampler.OtherTicksByCommand);
        }
    }

    private static bool Report(Options options, Mailbox mailbox, List<ToolResult> results)
    {
        var mpop = results.Single(r => r.Tool == "mpop");
        var cloud = results.Single(r => r.Tool == "cloudspool");
        var complete = true;
        Console.WriteLine("tool          messages       MiB    wall s    msgs/s     MiB/s   peak RSS MiB");
        foreach (var r in results.OrderBy(r => r.Tool == "mpop" ? 0 : r.Tool == "cloudspool" ? 1 : 2))
        {
            var wall = r.Timed.WallSeconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Tool,-12}{r.Messages,10}{Mib(r.Bytes),10:F1}{wall,10:F2}{r.Messages / wall,10:F1}{Mib(r.Bytes) / wall,10:F1}{r.Timed.PeakRssKb / 1024.0,15:F1}"));
            if (r.Messages != mailbox.Messages)
            {
                Console.WriteLine($"  INCOMPLETE: {r.Tool} got {r.Messages} of {mailbox.Messages} messages");
                complete = false;
            }
        }

        PrintAgainst([results]);
        PrintTargets(cloud.Timed.WallSeconds / mpop.Timed.WallSeconds, "ratio (cloudspool/mpop wall)", "", cloud.Timed.PeakRssKb, "",
            complete ? $"both got all {mailbox.Messages} messages" : null);
        var disturbed = new List<string>();
        foreach (var r in results)
        {
            PrintCpu(r, r.Tool + " run:", disturbed);
        }

        if (disturbed.Count > 0)
        {
            Console.WriteLine($"  NOTE: other processes were busy during {string.Join(" and ", disturbed)}: those figures are disturbed; rerun on an idle machine");
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  azurite peak RSS during the cloudspool run: {cloud.SampledPeakRssKb.GetValueOrDefault("azurite") / 1024.0:F1} MiB (a separate process, not in cloudspool's figure)"));

        if (options.Slices)
        {
            PrintPullSlices(cloud, "");
        }

        if (options.Timeline)
        {
            foreach (var r in results)
            {
                Timeline(r);
            }
        }

        return complete;
    }

    /// <summary>The ratio and peak memory against the targets, whether every message arrived, and the head of the CPU lines.</summary>
    private static void PrintTargets(double ratio, string ratioLabel, string ratioNote, long peakKb, string peakNote, string? completeText)
    {
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ratioLabel}: {ratio:F2}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"target ratio <= {TargetRatio:F2}: {(ratio <= TargetRatio ? "met" : "NOT met")}{ratioNote}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"target cloudspool peak RSS < 200 MiB: {(peakKb * 1024L < TargetPeakRssBytes ? "met" : "NOT met")} ({peakKb / 1024.0:F1} MiB{peakNote})"));
        Console.WriteLine(completeText ?? "NOT all messages arrived: the figures are not comparable");
        Console.WriteLine();
        Console.WriteLine($"CPU seconds used during each run ({Environment.ProcessorCount} cores = {Environment.ProcessorCount} CPU-s per wall second):");
    }

    /// <summary>One line of where the CPU went during a run; notes the run in <paramref name="disturbed"/> when other processes were busy.</summary>
    private static void PrintCpu(ToolResult r, string label, List<string> disturbed)
    {
        var wall = r.Timed.WallSeconds;
        var tool = r.CpuSeconds["tool user"] + r.CpuSeconds["tool sys"];
        var total = tool + r.CpuSeconds["azurite"] + r.CpuSeconds["dovecot"];
        var other = Math.Max(0, r.CpuSeconds["machine"] - total);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {label,-19}{r.Tool} {tool:F1} (user {r.CpuSeconds["tool user"]:F1}, sys {r.CpuSeconds["tool sys"]:F1}), azurite {r.CpuSeconds["azurite"]:F1}, dovecot {r.CpuSeconds["dovecot"]:F1}"
            + $" => {100 * total / (wall * Environment.ProcessorCount):F0}% of the machine over {wall:F1} s; other processes {other:F1}{TopOthers(r.OtherTicks)}"));
        if (other > 1 && other > 0.1 * wall * Environment.ProcessorCount)
        {
            disturbed.Add(string.Create(CultureInfo.InvariantCulture, $"{label.TrimEnd(':')} ({100 * other / (wall * Environment.ProcessorCount):F0}% of the machine)"));
        }
    }

    /// <summary>With --against: the other build's wall time beside the measured one's, each round and the median.</summary>
    private static void PrintAgainst(List<List<ToolResult>> rounds)
    {
        if (!rounds[0].Any(r => r.Tool == "against"))
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine("A/B (--against): round   cloudspool wall s   against wall s   against/cloudspool   against peak RSS MiB");
        var ratios = new List<double>();
        for (var i = 0; i < rounds.Count; i++)
        {
            var a = rounds[i].Single(r => r.Tool == "cloudspool");
            var b = rounds[i].Single(r => r.Tool == "against");
            ratios.Add(b.Timed.WallSeconds / a.Timed.WallSeconds);
            var missing = b.Messages == a.Messages ? "" : $" (against got {b.Messages} messages, cloudspool {a.Messages})";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{i + 1,22}{a.Timed.WallSeconds,20:F2}{b.Timed.WallSeconds,17:F2}{ratios[^1],21:F2}{b.Timed.PeakRssKb / 1024.0,23:F1}{missing}"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"median",22}{Median(rounds.Select(r => r.Single(t => t.Tool == "cloudspool").Timed.WallSeconds)),20:F2}"
            + $"{Median(rounds.Select(r => r.Single(t => t.Tool == "against").Timed.WallSeconds)),17:F2}{Median(ratios),21:F2}"));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>The report of several rounds: each round's figures, then the medians (the targets are judged on those).</summary>
    private static bool ReportRounds(Options options, Mailbox mailbox, List<List<ToolResult>> rounds)
    {
        var complete = true;
        Console.WriteLine("round   mpop wall s   cloudspool wall s   ratio   cloudspool peak RSS MiB");
        for (var i = 0; i < rounds.Count; i++)
        {
            var mpop = rounds[i].Single(r => r.Tool == "mpop");
            var cloud = rounds[i].Single(r => r.Tool == "cloudspool");
            complete &= mpop.Messages == mailbox.Messages && cloud.Messages == mailbox.Messages;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{i + 1,5}{mpop.Timed.WallSeconds,14:F2}{cloud.Timed.WallSeconds,20:F2}{cloud.Timed.WallSeconds / mpop.Timed.WallSeconds,8:F2}{cloud.Timed.PeakRssKb / 1024.0,26:F1}"));
        }

        var mpopWall = Median(rounds.Select(r => r.Single(t => t.Tool == "mpop").Timed.WallSeconds));
        var cloudWall = Median(rounds.Select(r => r.Single(t => t.Tool == "cloudspool").Timed.WallSeconds));
        var ratio = Median(rounds.Select(r => r.Single(t => t.Tool == "cloudspool").Timed.WallSeconds / r.Single(t => t.Tool == "mpop").Timed.WallSeconds));
        var peakKb = rounds.Max(r => r.Single(t => t.Tool == "cloudspool").Timed.PeakRssKb);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median{mpopWall,13:F2}{cloudWall,20:F2}{ratio,8:F2}{peakKb / 1024.0,26:F1} (the highest)"));
        PrintAgainst(rounds);
        PrintTargets(ratio, $"median ratio (cloudspool/mpop wall, of the {rounds.Count} rounds)", " (median)", peakKb, ", the highest of the rounds",
            complete ? $"both got all {mailbox.Messages} messages in every round" : null);
        var disturbed = new List<string>();
        for (var i = 0; i < rounds.Count; i++)
        {
            foreach (var r in rounds[i])
            {
                PrintCpu(r, $"{r.Tool} run {i + 1}:", disturbed);
            }
        }

        if (disturbed.Count > 0)
        {
            Console.WriteLine($"  NOTE: other processes were busy during {string.Join(", ", disturbed)}: those figures are disturbed; rerun on an idle machine");
        }

        if (options.Slices)
        {
            for (var i = 0; i < rounds.Count; i++)
            {
                PrintPullSlices(rounds[i].Single(t => t.Tool == "cloudspool"), $" (round {i + 1})");
            }
        }

        if (options.Timeline)
        {
            foreach (var r in rounds.SelectMany(r => r))
            {
                Timeline(r);
            }
        }

        return complete;
    }

    private static string TopOthers(Dictionary<string, long> ticks)
    {
        var top = ticks.Where(t => t.Value >= ProcStats.TicksPerSecond / 2).OrderByDescending(t => t.Value).Take(4)
            .Select(t => string.Create(CultureInfo.InvariantCulture, $"{t.Key} {t.Value / ProcStats.TicksPerSecond:F1}")).ToList();
        return top.Count == 0 ? "" : $" ({string.Join(", ", top)})";
    }

    /// <summary>
    /// --slices: the pull's rate in each tenth of its messages, from when each was fetched (receivedAt; a message is
    /// committed a bounded 16 MiB of writes later), and the last tenth's rate over the first's (at 100,000
    /// messages, the last 10,000 at no less than 80% of the first 10,000's rate).
    /// </summary>
    private static void PrintPullSlices(ToolResult r, string label)
    {
        var t = r.Arrivals;
        if (t.Count < 20)
        {
            Console.WriteLine($"slices{label}: too few messages ({t.Count}) for tenths");
            return;
        }

        Console.WriteLine();
        Console.WriteLine($"pull rate by tenth of the messages{label} (from each message's receivedAt; the first tenth counts from the first message):");
        Console.WriteLine("  tenth   messages   seconds    msgs/s");
        var rates = new List<double>();
        for (var k = 0; k < 10; k++)
        {
            var from = k == 0 ? 0 : t.Count * k / 10 - 1;
            var to = t.Count * (k + 1) / 10 - 1;
            var seconds = Math.Max(1e-3, (t[to] - t[from]).TotalSeconds);
            var count = to - from;
            rates.Add(count / seconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{(k + 1) * 10,6}%{to + 1,11}{seconds,10:F1}{rates[^1],10:F0}"));
        }

        var ratio = rates[^1] / rates[0];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"last tenth / first tenth: {ratio:F2} (the target at 100,000 messages: >= 0.80: {(ratio >= 0.8 ? "met" : "NOT met")}{(t.Count < 100_000 ? $"; this pull had {t.Count}" : "")})"));
    }

    private static void Timeline(ToolResult r)
    {
        Console.WriteLine();
        Console.WriteLine($"timeline of the {r.Tool} run (CPU % of one core, averaged over 5 s):");
        Console.WriteLine("      s      tool   azurite   dovecot");
        var samples = r.Samples;
        for (var i = 5; i < samples.Count; i += 5)
        {
            var (t0, a) = samples[i - 5];
            var (t1, b) = samples[i];
            double Pct(string k) => a.TryGetValue(k, out var x) && b.TryGetValue(k, out var y) ? 100 * (y - x) / ProcStats.TicksPerSecond / (t1 - t0) : 0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{t1,7:F0}{Pct("tool"),10:F0}{Pct("azurite"),10:F0}{Pct("dovecot"),10:F0}"));
        }
    }

    private static void PrintMachine(string? mpop, Options options)
    {
        var model = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        var memKb = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        var mpopVersion = mpop is null ? null : TimedProcess.Capture(mpop, "--version")?.Split('\n')[0] ?? "mpop";
        var dovecotVersion = TimedProcess.Capture("/usr/sbin/dovecot", "--version") ?? "?";
        var azuriteVersion = AzuriteVersion();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"machine:  nproc {Environment.ProcessorCount}, {model}, {long.Parse(memKb, CultureInfo.InvariantCulture) / 1024.0 / 1024:F1} GiB RAM, {RuntimeInformation.OSDescription}"));
        Console.WriteLine($"software: .NET {Environment.Version}, {(mpopVersion is null ? "" : mpopVersion + ", ")}Dovecot {dovecotVersion}, Azurite {azuriteVersion}, Node {TimedProcess.Capture("node", "--version") ?? "?"}");
        Console.WriteLine($"measured: {options.CloudSpoolDll}{(options.Source is null ? "" : $" built from {options.Source}")}");
        Console.WriteLine($"date:     {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC");
    }

    private static string AzuriteVersion()
    {
        var command = EmbeddedAzurite.FindCommand(null);
        if (command is null)
        {
            return "?";
        }

        // .bin/azurite -> ../azurite/dist/src/azurite.js; the package.json is in node_modules/azurite.
        var package = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(command))!, "azurite", "package.json");
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(package));
            return doc.RootElement.GetProperty("version").GetString() ?? "?";
        }
        catch (Exception ex) when (ex is IOException or JsonException or KeyNotFoundException)
        {
            return "?";
        }
    }

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(p => Path.Combine(p, name)).FirstOrDefault(File.Exists);

    internal static double Mib(long bytes) => bytes / 1024.0 / 1024.0;

    private static string Tail(string text, int lines) => string.Join('\n', text.Split('\n').TakeLast(lines));

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new BenchException(message);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"bench: could not delete {path}: {ex.Message}");
        }
    }

    [GeneratedRegex(@": ok: (?<n>\d+) new \((?<bytes>\d+) bytes\)")]
    private static partial Regex OkLine();

    internal sealed class BenchException(string message) : Exception(message);
}
