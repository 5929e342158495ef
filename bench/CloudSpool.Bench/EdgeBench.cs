using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading.Channels;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;
using CloudSpool.Host.Azurite;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Bench;

/// <summary>
/// The edge benchmark (<c>bench/run edge</c>): one generated mailbox served by Dovecot (maildir) and by the
/// CloudSpool edge (a separate <c>cloudspool edge</c> process on a private Azurite) side by side, measured with the
/// same raw POP3 client: listing latency, RETR throughput with 1 and 4 sessions, the listing at 100,000 small
/// messages, and the edge's peak memory.
/// </summary>
public static partial class Program
{
    private const string SmallUser = "small";
    private const int Repetitions = 20;
    private const int LookbackSeconds = 10;
    private const double TargetListingRatio = 0.1;
    private const double TargetWarmRetrRatio = 2.0;
    private const double TargetColdRetrRatio = 1.0;
    private const long TargetEdgeRssBytes = 300L * 1000 * 1000; // "300 MB"

    private sealed record Server(string Name, string Host, int Port, bool Pipelining);

    private sealed record Latency(double MedianMs, double P95Ms, double LoginMedianMs, int Messages, long Octets);

    private sealed record Throughput(int Sessions, double Seconds, int Messages, long Bytes, string Checksum, IReadOnlySet<string> Digests)
    {
        public double MibPerSecond => Bytes / 1024.0 / 1024.0 / Seconds;

        public double MessagesPerSecond => Messages / Seconds;
    }

    private static async Task<int> RunEdgeAsync(Options options, CancellationToken ct)
    {
        Require(File.Exists(options.CloudSpoolDll), $"{options.CloudSpoolDll} not found: build it (dotnet build src/CloudSpool.Host -c Release) or pass --cloudspool");
        Require(Environment.IsPrivilegedProcess, "must run as root: Dovecot switches to its mail user (bench/run takes care of it)");
        PrintMachine(null, options);

        await using var local = new BenchServers(Directory.CreateTempSubdirectory("cloudspool-edgebench-"), options.KeepTemp);
        var work = local.Work;
        var edges = new List<EdgeProcess>();
        try
        {
            await local.StartAsync(ct).ConfigureAwait(false);
            var dovecot = local.Dovecot!;
            var azurite = local.Azurite!;
            var azuriteLocation = local.AzuriteLocation;
            var azuritePid = ProcStats.AzuritePid(azuriteLocation);
            var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
            var prefix = "e" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            var storage = new AzureStorage(azurite.ConnectionString, prefix);
            await storage.EnsureCreatedAsync(ct).ConfigureAwait(false);
            var spool = new AzureSpool(storage);
            var environment = new Dictionary<string, string>
            {
                ["CLOUDSPOOL_CONFIG"] = Path.Combine(work.FullName, "cloudspool.json"),
                ["CLOUDSPOOL__Storage__ConnectionString"] = azurite.ConnectionString,
                ["CLOUDSPOOL__Storage__NamePrefix"] = prefix,
            };
            File.WriteAllText(environment["CLOUDSPOOL_CONFIG"], "{}\n");

            // 1. The mailbox, into Dovecot's maildir and (as Dovecot serves it, CRLF) into the spool.
            dovecot.AddUser(MailUser, password);
            var generator = new MailboxGenerator(options.Seed);
            var mailbox = await FillAsync(dovecot, spool, MailUser, options.Messages, () => generator.Next(), !options.Unpacked, ct).ConfigureAwait(false);
            var filled = Stopwatch.StartNew();
            await AddEdgeUserAsync(options, environment, MailUser, password, ct).ConfigureAwait(false);

            // 2. The edge, as a separate process with its state in the work folder and a cache that holds the whole mailbox.
            var cacheMb = Math.Max(1024, (int)(mailbox.Bytes * 2 / 1_000_000));
            var edge = await EdgeProcess.StartAsync(options.CloudSpoolDll, environment, Path.Combine(work.FullName, "edge"), cacheMb, prefetch: true, ct).ConfigureAwait(false);
            edges.Add(edge);

            var dovecotCaps = await CapabilitiesAsync(dovecot.Host, dovecot.Pop3Port, ct).ConfigureAwait(false);
            var edgeCaps = await CapabilitiesAsync("127.0.0.1", edge.Port, ct).ConfigureAwait(false);
            var servers = new[] { new Server("dovecot", dovecot.Host, dovecot.Pop3Port, dovecotCaps), new Server("edge", "127.0.0.1", edge.Port, edgeCaps) };
            Console.WriteLine($"pipelining: dovecot {(dovecotCaps ? "yes" : "no")}, edge {(edgeCaps ? "yes" : "no")}");

            // 3. Warm both: the edge's index (STAT count), its prefetch (CPU quiet), then one full RETR pass on each server
            // (page cache for Dovecot, anything the prefetch missed for the edge); every session identity used later logs in once.
            await WaitForCountAsync(servers[1], MailUser, password, options.Messages, ct).ConfigureAwait(false);
            var quiet = await WaitQuietAsync([edge.Pid, azuritePid], ct).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"edge:     indexed {options.Messages} messages; prefetch done {quiet:F1} s after start (CPU quiet)"));
            foreach (var server in servers)
            {
                var warm = await RetrieveAllAsync(server, MailUser, password, options.Messages, 4, ct).ConfigureAwait(false);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"warm-up:  {server.Name} RETR of all {warm.Messages} in {warm.Seconds:F1} s (checksum {warm.Checksum})"));
            }

            Console.WriteLine();

            // 4. Measured.
            await PastLookbackAsync(filled, ct).ConfigureAwait(false);
            Console.WriteLine($"measuring the listing ({Repetitions} sessions each, alternating) ...");
            var listing = await MeasureListingAsync(servers, MailUser, password, Repetitions, ct).ConfigureAwait(false);
            var retr = new Dictionary<(string, int), Throughput>();
            foreach (var sessions in new[] { 1, 4 })
            {
                foreach (var server in servers)
                {
                    Console.WriteLine($"measuring RETR of every message, {server.Name}, {sessions} session(s) ...");
                    retr[(server.Name, sessions)] = await RetrieveAllAsync(server, MailUser, password, options.Messages, sessions, ct).ConfigureAwait(false);
                }
            }

            var edgePeakKb = ProcStats.StatusKb(edge.Pid, "VmHWM");
            var edgeRssKb = ProcStats.StatusKb(edge.Pid, "VmRSS");

            Console.WriteLine();
            var ok = ReportEdge(options, mailbox, listing, retr, edgePeakKb, edgeRssKb, null);

            // 5. A spool twice the cache's size, cold, then a second client reading the newest messages after that pass.
            await edge.StopAsync().ConfigureAwait(false);
            ok &= await MeasureColdAsync(options, mailbox, servers[0], retr, spool, environment, work.FullName, password, azuritePid, edges, ct).ConfigureAwait(false);

            // 6. The listing at many small messages, on a second edge process of its own (its memory is that index's).
            if (options.ListingMessages > 0)
            {
                var large = await MeasureLargeListingAsync(options, dovecot, spool, environment, work.FullName, password, azuritePid, edges, ct).ConfigureAwait(false);
                Console.WriteLine();
                ok &= ReportEdge(options, mailbox, listing, retr, edgePeakKb, edgeRssKb, large);
            }

            Console.WriteLine(ok ? "both servers served the same messages, byte for byte" : "the servers DIFFER: the figures are not comparable");
            return ok ? 0 : 1;
        }
        finally
        {
            foreach (var edge in edges)
            {
                await edge.StopAsync().ConfigureAwait(false);
                if (options.KeepTemp)
                {
                    File.WriteAllText(Path.Combine(work.FullName, $"edge-{edge.Pid}.log"), edge.Output);
                }
            }
        }
    }

    /// <summary>How many of the newest messages the second client reads after the cold pass.</summary>
    private const int NewestMessages = 500;

    /// <summary>
    /// The cold cases: for 1 and for 4 sessions, a fresh edge (empty state folder, prefetch off, cache half the spool)
    /// reads every message once, against Dovecot's figures of the same run. After the 4-session pass, a second client
    /// identity reads the newest <see cref="NewestMessages"/> messages: its throughput and the cache's hit rate on them.
    /// </summary>
    private static async Task<bool> MeasureColdAsync(Options options, Mailbox mailbox, Server dovecot, Dictionary<(string, int), Throughput> retr,
        AzureSpool spool, Dictionary<string, string> environment, string work, string password, int azuritePid, List<EdgeProcess> edges, CancellationToken ct)
    {
        var cacheMb = Math.Max(1, (int)(mailbox.Bytes / 2 / 1_000_000));
        var ok = true;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cold: a spool of {mailbox.Bytes / 1_000_000} MB, twice the cache ({cacheMb} MB), an empty state folder per pass, prefetch off"));
        var floors = new List<(int Parallel, double MibPerSecond)>();
        var cpuRows = new List<string>();
        foreach (var parallel in StorageFloorParallel)
        {
            Console.WriteLine($"measuring the storage floor: every stored message read once, {parallel} at a time, no POP3 and no cache ...");
            var floorCpu = PassCpu.Start(Environment.ProcessId, azuritePid);
            floors.Add((parallel, await ReadStorageFloorAsync(spool, MailUser, parallel, ct).ConfigureAwait(false)));
            cpuRows.Add(floorCpu.Row($"storage floor, {parallel} at a time", mailbox.Bytes, "the bench (reader)"));
        }
        var rows = floors.Select(f => string.Create(CultureInfo.InvariantCulture,
            $"  storage floor, {f.Parallel} reads at a time, MiB/s  {"",10}{f.MibPerSecond,12:F1}   (what the store delivers to any reader)")).ToList();
        var bestFloor = floors.Max(f => f.MibPerSecond);
        foreach (var sessions in new[] { 1, 4 })
        {
            var state = Path.Combine(work, $"edge-cold-{sessions}");
            var edge = await EdgeProcess.StartAsync(options.CloudSpoolDll, environment, state, cacheMb, prefetch: false, ct).ConfigureAwait(false);
            edges.Add(edge);
            var server = new Server("edge", "127.0.0.1", edge.Port, await CapabilitiesAsync("127.0.0.1", edge.Port, ct).ConfigureAwait(false));
            await WaitForCountAsync(server, MailUser, password, options.Messages, ct).ConfigureAwait(false);
            Console.WriteLine($"measuring RETR of every message, cold edge, {sessions} session(s) ...");
            var cpu = PassCpu.Start(edge.Pid, azuritePid);
            var cold = await RetrieveAllAsync(server, MailUser, password, options.Messages, sessions, ct).ConfigureAwait(false);
            cpuRows.Add(cpu.Row($"cold, {sessions} session(s)", cold.Bytes));
            var d = retr[("dovecot", sessions)];
            var same = d.Checksum == cold.Checksum && d.Bytes == cold.Bytes;
            ok &= same;
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"  RETR all, {sessions} session(s), cold, MiB/s     {d.MibPerSecond,10:F1}{cold.MibPerSecond,12:F1}{cold.MibPerSecond / d.MibPerSecond,15:F2}   >= {TargetColdRetrRatio:F2} "
                + $"{(cold.MibPerSecond / d.MibPerSecond >= TargetColdRetrRatio ? "met" : "NOT met")}   {cold.MibPerSecond / bestFloor:F2} of the storage floor   "
                + $"edge peak RSS {ProcStats.StatusKb(edge.Pid, "VmHWM") / 1024.0:F1} MiB{(same ? "" : "   DIFFERENT BYTES")}"));
            if (sessions == 4)
            {
                // The figures file is written at most every 10 s, at a read: wait, and one read by another identity saves them.
                await Task.Delay(TimeSpan.FromSeconds(11), ct).ConfigureAwait(false);
                await RetrieveAllAsync(server, $"{MailUser}+probe", password, options.Messages, 1, ct, first: options.Messages).ConfigureAwait(false);
                var before = ReadFigures(state);
                var first = Math.Max(1, options.Messages - NewestMessages + 1);
                Console.WriteLine($"measuring a second client reading the newest {options.Messages - first + 1} messages after the pass ...");
                var newest = await RetrieveAllAsync(server, $"{MailUser}+newest", password, options.Messages, 1, ct, first).ConfigureAwait(false);
                var dNewest = await RetrieveAllAsync(dovecot, MailUser, password, options.Messages, 1, ct, first).ConfigureAwait(false);
                var peakKb = ProcStats.StatusKb(edge.Pid, "VmHWM");
                await edge.StopAsync().ConfigureAwait(false); // saves the figures
                var after = ReadFigures(state);
                var hits = after.Hits - before.Hits;
                var reads = hits + after.Misses - before.Misses;
                // The two servers need not number the messages alike (Dovecot by its maildir's order, the edge by ingest), so
                // the newest 500 by number are not the same messages: each message the edge served must be one Dovecot served
                // in its full pass, byte for byte.
                same = newest.Messages == dNewest.Messages && newest.Digests.IsSubsetOf(d.Digests);
                ok &= same;
                rows.Add(string.Create(CultureInfo.InvariantCulture,
                    $"  newest {newest.Messages} after the pass, 1 session, MiB/s{dNewest.MibPerSecond,10:F1}{newest.MibPerSecond,12:F1}{newest.MibPerSecond / dNewest.MibPerSecond,15:F2}   "
                    + $"cache hit rate {100.0 * hits / Math.Max(1, reads):F0} % ({hits} of {reads} reads, the probe's one read included)   edge peak RSS {peakKb / 1024.0:F1} MiB{(same ? "" : "   DIFFERENT BYTES")}"));
            }

            await edge.StopAsync().ConfigureAwait(false);
        }

        Console.WriteLine("                                              dovecot        edge   edge/dovecot   target");
        rows.ForEach(Console.WriteLine);
        // The store's speed varies from run to run; the CPU each pass cost per MB served does much less.
        Console.WriteLine($"CPU during each cold pass (CPU-s; ms per MB served; the machine has {Environment.ProcessorCount} CPU-s per second):");
        cpuRows.ForEach(Console.WriteLine);
        return ok;
    }

    /// <summary>The CPU the edge, Azurite and the whole machine used during one timed pass (from /proc).</summary>
    private sealed class PassCpu
    {
        private readonly int _edge;
        private readonly int _azurite;
        private readonly long _edgeTicks;
        private readonly long _azuriteTicks;
        private readonly long _machineTicks;
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        private PassCpu(int edge, int azurite)
        {
            _edge = edge;
            _azurite = azurite;
            _edgeTicks = Ticks(edge);
            _azuriteTicks = Ticks(azurite);
            _machineTicks = ProcStats.MachineBusyTicks();
        }

        public static PassCpu Start(int edge, int azurite) => new(edge, azurite);

        private static long Ticks(int pid) => ProcStats.TryRead(pid)?.OwnTicks ?? 0;

        public string Row(string pass, long bytes, string reader = "edge")
        {
            var seconds = _clock.Elapsed.TotalSeconds;
            var mb = bytes / 1_000_000.0;
            var edge = (Ticks(_edge) - _edgeTicks) / ProcStats.TicksPerSecond;
            var azurite = (Ticks(_azurite) - _azuriteTicks) / ProcStats.TicksPerSecond;
            var machine = (ProcStats.MachineBusyTicks() - _machineTicks) / ProcStats.TicksPerSecond;
            return string.Create(CultureInfo.InvariantCulture,
                $"  {pass}: {seconds:F1} s; {reader} {edge:F2} CPU-s ({1000 * edge / mb:F1} ms/MB), Azurite {azurite:F2} ({1000 * azurite / mb:F1} ms/MB), "
                + $"the rest (client, kernel, others) {machine - edge - azurite:F2}; machine busy {100 * machine / (Environment.ProcessorCount * seconds):F0} %");
        }
    }

    /// <summary>How many stored messages the storage floor reads at once: as many as the edge's read-ahead, and twice that.</summary>
    private static readonly int[] StorageFloorParallel = [4, 8];

    /// <summary>
    /// What the store itself delivers: every message of <paramref name="mailbox"/> read once through the storage adapter
    /// (one request per message, as a cache miss makes), <paramref name="parallel"/> at a time, bytes drained; MiB/s of
    /// stored bytes. A cold edge can serve no faster than this.
    /// </summary>
    private static async Task<double> ReadStorageFloorAsync(AzureSpool spool, string mailbox, int parallel, CancellationToken ct)
    {
        var entries = new List<SpoolIndexEntry>();
        await foreach (var entry in spool.ListIndexAsync(mailbox, null, ct).ConfigureAwait(false))
            entries.Add(entry);
        long bytes = 0;
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(entries, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (entry, token) =>
        {
            await using var content = await spool.OpenContentAsync(entry, token).ConfigureAwait(false);
            var buffer = new byte[64 * 1024];
            long read = 0;
            int n;
            while ((n = await content.ReadAsync(buffer, token).ConfigureAwait(false)) > 0)
                read += n;
            Interlocked.Add(ref bytes, read);
        }).ConfigureAwait(false);
        return bytes / 1024.0 / 1024.0 / clock.Elapsed.TotalSeconds;
    }

    /// <summary>The cache's figures as the edge last saved them (<c>cache/figures.json</c> in its folder for this spool, under the state folder).</summary>
    private static CloudSpool.Edge.CacheFigures ReadFigures(string state) =>
        Directory.EnumerateFiles(state, "figures.json", SearchOption.AllDirectories).Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == "cache").ToList() is [var path]
            ? System.Text.Json.JsonSerializer.Deserialize<CloudSpool.Edge.CacheFigures>(File.ReadAllText(path)) ?? throw new BenchException($"{path} is empty")
            : throw new BenchException($"no single cache/figures.json under {state}");

    private static async Task<(Dictionary<string, Latency>, Mailbox, long, long, double, long)> MeasureLargeListingAsync(
        Options options, DovecotServer dovecot, AzureSpool spool, Dictionary<string, string> environment, string work, string password, int azuritePid,
        List<EdgeProcess> edges, CancellationToken ct)
    {
        Console.WriteLine();
        dovecot.AddUser(SmallUser, password);
        var rng = new Random(options.Seed + 1);
        var index = 0;
        var mailbox = await FillAsync(dovecot, spool, SmallUser, options.ListingMessages, () => (SmallMessage(rng, index++), MailKind.Text), !options.Unpacked, ct).ConfigureAwait(false);
        var filled = Stopwatch.StartNew();
        await AddEdgeUserAsync(options, environment, SmallUser, password, ct).ConfigureAwait(false);

        var warm = Stopwatch.StartNew();
        var (count, _) = await Pop3Probe.WarmUpAsync(dovecot.Host, dovecot.Pop3Port, SmallUser, password, ct).ConfigureAwait(false);
        Require(count == options.ListingMessages, $"Dovecot reports {count} messages after delivering {options.ListingMessages}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"dovecot:  indexed {count} messages in a first session in {warm.Elapsed.TotalSeconds:F1} s"));

        // Prefetch off: the listing needs no cache, and copying 100,000 blobs would only delay the measurement.
        var edge = await EdgeProcess.StartAsync(options.CloudSpoolDll, environment, Path.Combine(work, "edge-small"), 1024, prefetch: false, ct).ConfigureAwait(false);
        edges.Add(edge);
        var caps = await CapabilitiesAsync("127.0.0.1", edge.Port, ct).ConfigureAwait(false);
        var servers = new[] { new Server("dovecot", dovecot.Host, dovecot.Pop3Port, true), new Server("edge", "127.0.0.1", edge.Port, caps) };
        var indexed = Stopwatch.StartNew();
        await WaitForCountAsync(servers[1], SmallUser, password, options.ListingMessages, ct).ConfigureAwait(false);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"edge:     indexed {options.ListingMessages} messages {indexed.Elapsed.TotalSeconds:F1} s after it listened"));
        await WaitQuietAsync([edge.Pid, azuritePid], ct).ConfigureAwait(false);
        await PastLookbackAsync(filled, ct).ConfigureAwait(false);
        var repetitions = Math.Max(5, Repetitions / 2);
        Console.WriteLine($"measuring the listing at {options.ListingMessages} messages ({repetitions} sessions each, alternating) ...");
        await MeasureListingAsync(servers, SmallUser, password, 2, ct).ConfigureAwait(false); // warm-up
        var listing = await MeasureListingAsync(servers, SmallUser, password, repetitions, ct).ConfigureAwait(false);
        var (peakKb, rssKb) = (ProcStats.StatusKb(edge.Pid, "VmHWM"), ProcStats.StatusKb(edge.Pid, "VmRSS"));

        // A restart: the index is read from its file, then confirmed by a full listing (both held at once, if at all, here).
        await edge.StopAsync().ConfigureAwait(false);
        var restarted = await EdgeProcess.StartAsync(options.CloudSpoolDll, environment, Path.Combine(work, "edge-small"), 1024, prefetch: false, ct).ConfigureAwait(false);
        edges.Add(restarted);
        await WaitForCountAsync(new Server("edge", "127.0.0.1", restarted.Port, caps), SmallUser, password, options.ListingMessages, ct).ConfigureAwait(false);
        await WaitQuietAsync([restarted.Pid, azuritePid], ct).ConfigureAwait(false);
        return (listing, mailbox, peakKb, rssKb, mailbox.Seconds, ProcStats.StatusKb(restarted.Pid, "VmHWM"));
    }

    /// <summary>
    /// Generates the mailbox once: each message goes to Dovecot's maildir as generated (LF) and, with CRLF line ends as
    /// Dovecot serves it, into the spool through the spool port, with many writers in parallel: with <paramref name="packed"/>
    /// as the pull job stores a batch (messages up to 2 MiB together in one pack blob, larger ones alone, then their
    /// metadata in one transaction), else each message in a blob of its own.
    /// </summary>
    private static async Task<Mailbox> FillAsync(DovecotServer dovecot, AzureSpool spool, string user, int count, Func<(byte[] Bytes, MailKind Kind)> next, bool packed, CancellationToken ct)
    {
        const int Batch = 49; // the pull's commit batch and most messages in a pack
        const long PackMessageBytes = 2L << 20, PackBytes = 8L << 20; // the pull's defaults
        var clock = Stopwatch.StartNew();
        var channel = Channel.CreateBounded<List<byte[]>>(new BoundedChannelOptions(16) { SingleWriter = true });
        // The blobs are written in parallel, the commits one at a time: a pull commits a mailbox from one writer, and a
        // dozen committing into one mailbox at once conflict until the spool gives up.
        using var committing = new SemaphoreSlim(1, 1);
        var writers = Enumerable.Range(0, 12).Select(_ => Task.Run(async () =>
        {
            await foreach (var batch in channel.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                var messages = new List<IngestedMessage>(batch.Count);
                var pack = new List<(IngestedMessage Message, Stream Content)>();
                long packBytes = 0;
                async Task WritePackAsync()
                {
                    if (pack.Count == 0)
                        return;
                    var slots = await spool.WritePackAsync(user, pack, ct).ConfigureAwait(false);
                    messages.AddRange(pack.Select((p, i) => p.Message with { Pack = slots[i] }));
                    pack.Clear();
                    packBytes = 0;
                }
                foreach (var raw in batch)
                {
                    var message = Ingested(raw);
                    if (packed && raw.Length <= PackMessageBytes)
                    {
                        pack.Add((message, new MemoryStream(raw, writable: false)));
                        packBytes += raw.Length;
                        if (packBytes >= PackBytes)
                            await WritePackAsync().ConfigureAwait(false);
                        continue;
                    }
                    await spool.WriteContentAsync(user, message, new MemoryStream(raw, writable: false), ct).ConfigureAwait(false);
                    messages.Add(message);
                }
                await WritePackAsync().ConfigureAwait(false);

                IReadOnlyList<StoreResult> results;
                await committing.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    results = await spool.CommitAsync(user, messages, ct).ConfigureAwait(false);
                }
                finally
                {
                    committing.Release();
                }
                if (results.Any(r => r.Outcome != StoreOutcome.Stored))
                {
                    throw new BenchException($"the spool refused a generated message as a duplicate in mailbox {user}");
                }
            }
        }, ct)).ToList();

        var kinds = Enum.GetValues<MailKind>().ToDictionary(k => k, _ => 0);
        long bytes = 0, served = 0, smallest = long.MaxValue, largest = 0;
        var sizes = new List<int>(count);
        try
        {
            var batch = new List<byte[]>(Batch);
            for (var i = 0; i < count; i++)
            {
                var (raw, kind) = next();
                dovecot.DeliverRaw(user, raw);
                var crlf = ToCrlf(raw);
                kinds[kind]++;
                bytes += raw.Length;
                served += crlf.Length;
                smallest = Math.Min(smallest, raw.Length);
                largest = Math.Max(largest, raw.Length);
                sizes.Add(raw.Length);
                batch.Add(crlf);
                if (batch.Count == Batch || i == count - 1)
                {
                    await channel.Writer.WriteAsync(batch, ct).ConfigureAwait(false);
                    batch = new List<byte[]>(Batch);
                }
            }
        }
        finally
        {
            channel.Writer.TryComplete();
        }

        await Task.WhenAll(writers).ConfigureAwait(false);
        sizes.Sort();
        var mailbox = new Mailbox(count, served, kinds, smallest, largest, clock.Elapsed.TotalSeconds);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"mailbox {user}: {count} messages, {Mib(bytes):F1} MiB in maildir files, {Mib(served):F1} MiB as served (CRLF), seed {SeedOf(user)}: "
            + $"{kinds[MailKind.Text]} text, {kinds[MailKind.Html]} HTML, {kinds[MailKind.Attachment]} with attachment, {kinds[MailKind.Large]} of about 5 MB; "
            + $"{smallest / 1024.0:F1} KiB to {Mib(largest):F2} MiB, median {sizes[sizes.Count / 2] / 1024.0:F1} KiB"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"          generated, delivered to Dovecot and written to the spool (12 writers, commits one at a time; {(packed ? "up to 2 MiB in packs, as a pull stores them" : "a blob per message")}) in {mailbox.Seconds:F1} s ({count / mailbox.Seconds:F0} msgs/s)"));
        return mailbox;

        static string SeedOf(string user) => user == MailUser ? "--seed" : "--seed + 1";
    }

    private static IngestedMessage Ingested(byte[] raw) => IngestedMessage.FromBytes(raw, "bench", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow);

    /// <summary>LF line ends to CRLF (a CR already before the LF is kept), as Dovecot serves a maildir file over POP3.</summary>
    private static byte[] ToCrlf(byte[] raw)
    {
        var output = new MemoryStream(raw.Length + raw.Length / 20);
        var last = 0;
        for (var at = Array.IndexOf(raw, (byte)'\n'); at >= 0; at = Array.IndexOf(raw, (byte)'\n', at + 1))
        {
            if (at > 0 && raw[at - 1] == (byte)'\r')
            {
                continue;
            }

            output.Write(raw, last, at - last);
            output.Write("\r\n"u8);
            last = at + 1;
        }

        output.Write(raw, last, raw.Length - last);
        return output.ToArray();
    }

    /// <summary>A small text message of about 1-3 KB (deterministic for a seeded <paramref name="rng"/>).</summary>
    private static byte[] SmallMessage(Random rng, int i)
    {
        var text = new StringBuilder(3000);
        var date = new DateTimeOffset(2024, 3, 1, 8, 0, 0, TimeSpan.Zero).AddSeconds(i * 37L);
        text.Append("Return-Path: <sender").Append(i % 97).Append("@example.com>\n")
            .Append("Received: from mx.example.com (mx.example.com [192.0.2.25]) by mail.example.net; ")
            .Append(date.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)).Append('\n')
            .Append("From: Sender ").Append(i % 97).Append(" <sender").Append(i % 97).Append("@example.com>\n")
            .Append("To: bench@example.net\n")
            .Append("Subject: small message ").Append(i).Append('\n')
            .Append("Date: ").Append(date.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)).Append('\n')
            .Append("Message-ID: <small.").Append(i).Append('.').Append(rng.Next()).Append("@example.com>\n")
            .Append("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n");
        var target = 700 + rng.Next(2000);
        var line = 0;
        while (text.Length < target)
        {
            text.Append("line ").Append(line++).Append(": the quick brown fox jumps over the lazy dog ").Append(rng.Next(100_000)).Append('\n');
        }

        return Encoding.ASCII.GetBytes(text.ToString());
    }

    private static async Task AddEdgeUserAsync(Options options, Dictionary<string, string> environment, string user, string password, CancellationToken ct)
    {
        var add = await TimedProcess.RunAsync(["dotnet", options.CloudSpoolDll, "user", "add", user, "--mailbox", user], environment, null, ct, stdin: password + "\n").ConfigureAwait(false);
        if (add.ExitCode != 0)
        {
            throw new BenchException($"cloudspool user add failed with exit code {add.ExitCode}:\n{add.Stdout}{add.Stderr}");
        }
    }

    private static async Task<bool> CapabilitiesAsync(string host, int port, CancellationToken ct)
    {
        await using var client = await RawPop3Client.ConnectAsync(host, port, ct).ConfigureAwait(false);
        var pipelining = await client.PipeliningAsync(ct).ConfigureAwait(false);
        await client.QuitAsync(ct).ConfigureAwait(false);
        return pipelining;
    }

    /// <summary>Logs in until STAT shows <paramref name="count"/> messages (the edge's index caught up).</summary>
    private static async Task WaitForCountAsync(Server server, string user, string password, int count, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        var last = -1;
        while (true)
        {
            try
            {
                await using var client = await RawPop3Client.ConnectAsync(server.Host, server.Port, ct).ConfigureAwait(false);
                (last, _) = await client.LoginAsync(user, password, server.Pipelining, ct).ConfigureAwait(false);
                await client.QuitAsync(ct).ConfigureAwait(false);
            }
            catch (IOException ex)
            {
                Console.WriteLine($"          {server.Name}: {ex.Message}");
            }

            if (last == count)
            {
                return;
            }

            Require(deadline.Elapsed < TimeSpan.FromMinutes(20), $"{server.Name} still shows {last} of {count} messages after 20 minutes");
            await Task.Delay(1000, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Waits until the given processes together use under 3% of one core for 3 s in a row; returns seconds waited.</summary>
    private static async Task<double> WaitQuietAsync(int[] pids, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var quietSeconds = 0;
        long Ticks() => pids.Sum(p => ProcStats.TryRead(p) is { } s ? s.OwnTicks : 0);
        var before = Ticks();
        while (quietSeconds < 3 && clock.Elapsed < TimeSpan.FromMinutes(30))
        {
            await Task.Delay(1000, ct).ConfigureAwait(false);
            var now = Ticks();
            quietSeconds = now - before <= 3 ? quietSeconds + 1 : 0;
            before = now;
        }

        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Waits until the newest message is older than the edge's look-back (see <see cref="LookbackSeconds"/>).</summary>
    private static async Task PastLookbackAsync(Stopwatch filled, CancellationToken ct)
    {
        var left = TimeSpan.FromSeconds(LookbackSeconds + 2) - filled.Elapsed;
        if (left > TimeSpan.Zero)
        {
            await Task.Delay(left, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Login+STAT+UIDL+LIST sessions, alternating between the servers so both see the same machine load.</summary>
    private static async Task<Dictionary<string, Latency>> MeasureListingAsync(Server[] servers, string user, string password, int repetitions, CancellationToken ct)
    {
        var samples = servers.ToDictionary(s => s.Name, _ => new List<RawPop3Client.Listing>());
        for (var i = 0; i < repetitions; i++)
        {
            foreach (var server in i % 2 == 0 ? servers : servers.Reverse())
            {
                samples[server.Name].Add(await RawPop3Client.ListAsync(server.Host, server.Port, user, password, server.Pipelining, ct).ConfigureAwait(false));
            }
        }

        return samples.ToDictionary(s => s.Key, s =>
        {
            var totals = s.Value.Select(l => l.Total.TotalMilliseconds).Order().ToList();
            var logins = s.Value.Select(l => l.Login.TotalMilliseconds).Order().ToList();
            return new Latency(Percentile(totals, 0.5), Percentile(totals, 0.95), Percentile(logins, 0.5), s.Value[0].Messages, s.Value[0].Octets);
        });
    }

    private static double Percentile(List<double> sorted, double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>
    /// RETR of every message from <paramref name="first"/> with <paramref name="sessions"/> sessions at once, message i going to session i mod n. On the
    /// edge each session is its own client identity (user, user+s1, ...), since one identity gets one session at a time.
    /// </summary>
    private static async Task<Throughput> RetrieveAllAsync(Server server, string user, string password, int count, int sessions, CancellationToken ct, int first = 1)
    {
        // The clock starts when every session is logged in: this is the transfer, the listing measures the login.
        var clock = new Stopwatch();
        using var ready = new Barrier(sessions, _ => clock.Start());
        var parts = await Task.WhenAll(Enumerable.Range(0, sessions).Select(s => Task.Run(async () =>
        {
            var login = s == 0 || server.Name != "edge" ? user : $"{user}+s{s}";
            await using var client = await RawPop3Client.ConnectAsync(server.Host, server.Port, ct).ConfigureAwait(false);
            var (messages, _) = await client.LoginAsync(login, password, server.Pipelining, ct).ConfigureAwait(false);
            Require(messages == count, $"{server.Name} shows {messages} messages to {login}, expected {count}");
            var numbers = Enumerable.Range(first, count - first + 1).Where(n => (n - 1) % sessions == s).ToList();
            ready.SignalAndWait(ct);
            var result = await client.RetrieveAsync(numbers, server.Pipelining, ct).ConfigureAwait(false);
            await client.QuitAsync(ct).ConfigureAwait(false);
            return result;
        }, ct))).ConfigureAwait(false);
        var seconds = clock.Elapsed.TotalSeconds;
        var all = parts.SelectMany(p => p).ToList();
        return new Throughput(sessions, seconds, all.Count, all.Sum(r => r.Bytes), RawPop3Client.Checksum(all.Select(r => r.Digest)),
            all.Select(r => Convert.ToHexString(r.Digest)).ToHashSet(StringComparer.Ordinal));
    }

    private static bool ReportEdge(Options options, Mailbox mailbox, Dictionary<string, Latency> listing, Dictionary<(string, int), Throughput> retr,
        long edgePeakKb, long edgeRssKb, (Dictionary<string, Latency> Listing, Mailbox Mailbox, long PeakKb, long RssKb, double Fill, long RestartPeakKb)? large)
    {
        // Without large: the main mailbox's table; with it: only the many-small-messages table.
        var ok = true;
        string Met(bool met) => met ? "met" : "NOT met";
        void Row(string what, double d, double e, string unit, string target) =>
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {what,-42}{d,10:F1}{e,12:F1}{e / d,15:F2}   {target}   {unit}"));
        if (large is { } l)
        {
            return ReportLarge(l);
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{options.Messages} messages, {Mib(mailbox.Bytes):F1} MiB as served:"));
        Console.WriteLine("                                              dovecot        edge   edge/dovecot   target");
        var d1 = listing["dovecot"];
        var e1 = listing["edge"];
        Row("login+STAT+UIDL+LIST ms, median", d1.MedianMs, e1.MedianMs, "", $"<= {TargetListingRatio:F2} {Met(e1.MedianMs / d1.MedianMs <= TargetListingRatio)}");
        Row("login+STAT+UIDL+LIST ms, p95", d1.P95Ms, e1.P95Ms, "", "");
        Row("  of which login (to PASS +OK) ms, median", d1.LoginMedianMs, e1.LoginMedianMs, "", "");
        ok &= d1.Messages == e1.Messages && d1.Octets == e1.Octets;
        foreach (var sessions in new[] { 1, 4 })
        {
            var d = retr[("dovecot", sessions)];
            var e = retr[("edge", sessions)];
            Row($"RETR all, {sessions} session(s), MiB/s", d.MibPerSecond, e.MibPerSecond, "", $">= {TargetWarmRetrRatio:F2} {Met(e.MibPerSecond / d.MibPerSecond >= TargetWarmRetrRatio)}");
            Row($"RETR all, {sessions} session(s), msgs/s", d.MessagesPerSecond, e.MessagesPerSecond, "", "");
            var same = d.Checksum == e.Checksum && d.Bytes == e.Bytes && d.Messages == e.Messages;
            ok &= same;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {(same ? "same bytes" : "DIFFERENT BYTES")}: dovecot {d.Messages} msgs {d.Bytes} B checksum {d.Checksum}; edge {e.Messages} msgs {e.Bytes} B checksum {e.Checksum}; {d.Seconds:F2} s vs {e.Seconds:F2} s"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  STAT: dovecot {d1.Messages} msgs {d1.Octets} octets; edge {e1.Messages} msgs {e1.Octets} octets{(d1.Octets == e1.Octets ? "" : " (DIFFERENT)")}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  edge process: peak RSS (VmHWM) {edgePeakKb / 1024.0:F1} MiB, RSS now {edgeRssKb / 1024.0:F1} MiB"));

        return ok;

        bool ReportLarge((Dictionary<string, Latency> Listing, Mailbox Mailbox, long PeakKb, long RssKb, double Fill, long RestartPeakKb) l)
        {
            var d = l.Listing["dovecot"];
            var e = l.Listing["edge"];
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{options.ListingMessages} small messages, {Mib(l.Mailbox.Bytes):F1} MiB as served (spool filled in {l.Fill:F0} s):"));
            Console.WriteLine("                                              dovecot        edge   edge/dovecot   target");
            Row("login+STAT+UIDL+LIST ms, median", d.MedianMs, e.MedianMs, "", $"<= {TargetListingRatio:F2} {Met(e.MedianMs / d.MedianMs <= TargetListingRatio)}");
            Row("login+STAT+UIDL+LIST ms, p95", d.P95Ms, e.P95Ms, "", "");
            Row("  of which login (to PASS +OK) ms, median", d.LoginMedianMs, e.LoginMedianMs, "", "");
            ok &= d.Messages == e.Messages && d.Octets == e.Octets;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  edge process (this mailbox only): peak RSS (VmHWM) {l.PeakKb / 1024.0:F1} MiB = {l.PeakKb * 1024 / 1e6:F0} MB, RSS now {l.RssKb / 1024.0:F1} MiB; "
                + $"target < 300 MB {Met(l.PeakKb * 1024 < TargetEdgeRssBytes)}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  the same edge restarted (its index read from disk, then the mailbox listed whole): peak RSS {l.RestartPeakKb / 1024.0:F1} MiB = {l.RestartPeakKb * 1024 / 1e6:F0} MB; "
                + $"target < 300 MB {Met(l.RestartPeakKb * 1024 < TargetEdgeRssBytes)}"));
            return ok;
        }
    }

    /// <summary>A running <c>cloudspool edge</c> process; its port comes from its "listening on" log line.</summary>
    private sealed partial class EdgeProcess
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();

        private EdgeProcess(Process process) => _process = process;

        public int Pid => _process.Id;

        public int Port { get; private set; }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        /// <summary>Starts <c>cloudspool edge</c> (or <paramref name="command"/>, such as <c>run</c>, which serves POP3 too) and waits until it listens.</summary>
        public static async Task<EdgeProcess> StartAsync(string dll, Dictionary<string, string> environment, string state, int cacheMb, bool prefetch, CancellationToken ct,
            string command = "edge", TimeSpan? listenTimeout = null)
        {
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add(dll);
            start.ArgumentList.Add(command);
            foreach (var (key, value) in environment)
            {
                start.Environment[key] = value;
            }

            start.Environment["CLOUDSPOOL__Edge__Port"] = "0";
            start.Environment["CLOUDSPOOL__Edge__StateDirectory"] = state;
            start.Environment["CLOUDSPOOL__Edge__CacheMegabytes"] = cacheMb.ToString(CultureInfo.InvariantCulture);
            start.Environment["CLOUDSPOOL__Edge__Prefetch"] = prefetch ? "true" : "false";
            start.Environment["CLOUDSPOOL__Edge__MaxSessions"] = "100";
            // A login catches up from the newest key minus the look-back (default 5 min). The bench's mail was all
            // committed a moment ago, so the default would re-read the whole mailbox at every login, which a mailbox
            // whose mail is older than the look-back never does: 10 s stands for that steady state.
            start.Environment["CLOUDSPOOL__Edge__Lookback"] = TimeSpan.FromSeconds(LookbackSeconds).ToString("c", CultureInfo.InvariantCulture);
            var edge = new EdgeProcess(new Process { StartInfo = start });
            var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            void OnLine(string? line)
            {
                if (line is null)
                {
                    return;
                }

                lock (edge._output)
                {
                    edge._output.AppendLine(line);
                }

                if (ListeningLine().Match(line) is { Success: true } m)
                {
                    port.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                }
            }

            edge._process.OutputDataReceived += (_, e) => OnLine(e.Data);
            edge._process.ErrorDataReceived += (_, e) => OnLine(e.Data);
            edge._process.EnableRaisingEvents = true;
            edge._process.Exited += (_, _) => port.TrySetException(new BenchException("cloudspool edge exited:\n" + edge.Output));
            edge._process.Start();
            edge._process.BeginOutputReadLine();
            edge._process.BeginErrorReadLine();
            edge.Port = await port.Task.WaitAsync(listenTimeout ?? TimeSpan.FromSeconds(60), ct).ConfigureAwait(false);
            Console.WriteLine($"edge:     cloudspool {command} pid {edge.Pid} listening on 127.0.0.1:{edge.Port} (cache {cacheMb} MB, prefetch {(prefetch ? "on" : "off")})");
            return edge;
        }

        /// <summary>SIGTERM, then SIGKILL after 10 s.</summary>
        public async Task StopAsync()
        {
            if (_process.HasExited)
            {
                return;
            }

            using (var term = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync().ConfigureAwait(false);
            }

            try
            {
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                _process.Kill(entireProcessTree: true);
            }
        }

        [GeneratedRegex(@"POP3 edge listening on 127\.0\.0\.1:(\d+)")]
        private static partial Regex ListeningLine();
    }
}
