using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.Storage.Azure;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.Bench;

/// <summary>
/// The scale case (<c>bench/run scale</c>): a private Azurite, started as the product starts its embedded one, is
/// filled with N generated messages (default 1,000,000) through the real storage adapter, the way a pull writes them
/// (packs of small messages, own blobs for large ones, commits of one pack or up to 49 messages, the seen ledger every
/// 200), without POP3. Prints each tenth of the fill (rate, Azurite's RSS and CPU, its database files), then the totals
/// against the targets, an extrapolation of the databases to 1,000,000 messages, a no-loss check (every committed
/// message listed back, a sample read back and hashed) and, after a restart of Azurite, how long `cloudspool run` takes
/// to answer POP3 on that store.
/// </summary>
public static partial class Program
{
    private const string ScaleUser = "bench";
    private const string ScaleClient = "bench+phone";
    private const int ScaleChunk = 500; // messages generated together (each chunk has a seed of its own)
    private const int ScaleAim = 1_000_000;
    private const int ScaleSample = 1000;
    private const int LeanDivisor = 10;
    private const long ScaleTargetRssBytes = 1_000_000_000; // "under 1 GB"
    private const double ScaleTargetShare = 0.5;
    private const double ScaleTargetSliceRatio = 0.8;
    private const double ScaleTargetAnswerSeconds = 30;

    // What a pull does with these (PullEngineOptions' defaults): messages up to 2 MiB go into packs of up to 49 messages
    // or 8 MiB, larger ones get a blob of their own; up to 16 MiB of writes in flight; the seen ledger every 200.
    private static readonly PullEngineOptions PullDefaults = new();

    private sealed record ScaleMessage(IngestedMessage Ingested, byte[] Bytes, long Nominal, MailKind Kind);

    private sealed record ScaleUnit(List<ScaleMessage> Members, bool Packed, Task<IReadOnlyList<PackSlot>> Write, int Permits);

    private sealed record ScaleSlice(int Messages, long Bytes, double Seconds, double AzuriteCpu, double BenchCpu, double OtherCpu, long AzuriteRssKb, StoreCapacity Databases);

    private sealed class ScaleTally
    {
        public int Committed;
        public long Bytes;
        public long NominalBytes;
        public int Packs;
        public int OwnBlobs;
        public int Commits;
        public UInt128 Digest;
        public StoreCapacity? Empty; // the databases before the measured messages
        public double Seconds; // from the first write to the last commit
        public readonly List<ScaleSlice> Slices = [];
        public readonly Dictionary<MailKind, int> Kinds = Enum.GetValues<MailKind>().ToDictionary(k => k, _ => 0);
        public readonly List<(string Key, string Sha256, long Length)> Sample = [];

        /// <summary>With --views: the view of one client that deletes every message it downloads, a QUIT a commit.</summary>
        public AzureClientViewStore? Views;
        public int Hidden;
        public UInt128 HiddenDigest;
    }

    private static async Task<int> RunScaleAsync(Options options, CancellationToken ct)
    {
        PrintMachine(null, options);
        var n = options.Messages;
        var perMessage = options.Lean ? 20_000L : 100_000L; // served bytes a message takes on Azurite's disk, roughly
        var work = Directory.CreateTempSubdirectory("cloudspool-scalebench-");
        var free = new DriveInfo(work.FullName).AvailableFreeSpace;
        if (free < n * perMessage * 12 / 10 + (2L << 30))
        {
            TryDelete(work.FullName);
            throw new BenchException(string.Create(CultureInfo.InvariantCulture,
                $"{n} messages take about {n * perMessage / 1e9:F0} GB on Azurite's disk and {work.Parent!.FullName} has {free / 1e9:F0} GB free{(options.Lean ? "" : "; --lean takes about a fifth (attachments 10 times smaller, the same blobs and rows)")}"));
        }

        var location = Path.Combine(work.FullName, "azurite");
        EmbeddedAzurite? azurite = null;
        EdgeProcess? run = null;
        try
        {
            azurite = await EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, ct).ConfigureAwait(false);
            var azuritePid = ProcStats.AzuritePid(location);
            var prefix = "s" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
            var storage = new AzureStorage(azurite.ConnectionString, prefix);
            await storage.EnsureCreatedAsync(ct).ConfigureAwait(false);
            var spool = new AzureSpool(storage);
            var ledger = new AzurePullLedger(storage);
            var limits = new AzuriteOptions();
            var gauge = new AzuriteCapacityGauge(location, limits.DatabaseLimitBytes, limits.WarnPercent / 100.0, limits.RefusePercent / 100.0);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"azurite:  private instance as the product starts it (EmbeddedAzurite), data in {location}; database limit {limits.DatabaseLimitBytes / 1048576.0:F1} MiB"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fill:     {n} messages (seed {options.Seed}{(options.Lean ? $", lean: attachments {LeanDivisor} times smaller, packed and blobbed by their real size" : "")}) through AzureSpool as a pull writes them: "
                + $"packs of up to {options.Batch} messages or {PullDefaults.PackBytes >> 20} MiB, own blobs above {PullDefaults.PackMessageBytes >> 20} MiB, seen ledger every {PullDefaults.SeenBatchSize}"));

            // A warm-up (one chunk into a mailbox of its own, so that the code the fill runs is compiled and Azurite's too),
            // then the store's databases once Azurite has saved them (every 5 s): what is there before the measured messages.
            await FillScaleAsync(options with { Messages = ScaleChunk, Seed = options.Seed + 1 }, "warmup", spool, ledger, gauge, azuritePid, new ScaleTally(), ct).ConfigureAwait(false);
            await WaitForSaveAsync(location, DateTime.UtcNow, ct).ConfigureAwait(false);
            var empty = gauge.Measure();
            // The fill starts on a quiet disk: what the build before it (bench/run publishes and builds) or anything else left
            // dirty in the page cache is written out first, so the first tenth does not wait for that write-back.
            await TimedProcess.RunAsync(["sync"], null, null, ct).ConfigureAwait(false);

            var tally = new ScaleTally { Empty = empty, Views = options.Views ? new AzureClientViewStore(storage, TimeProvider.System) : null };
            string? failure = null;
            try
            {
                await FillScaleAsync(options, ScaleUser, spool, ledger, gauge, azuritePid, tally, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (!ct.IsCancellationRequested && ex is not OutOfMemoryException)
            {
                // What this case is about: the store failing under the fill (Azurite aborted, or too slow to answer). The
                // figures so far are reported, and what was acknowledged is checked, on a restarted Azurite if it died.
                failure = ex.Message.Split('\n')[0];
                Console.WriteLine($"FILL FAILED after {tally.Committed} committed messages: {ex.GetType().Name}: {failure}");
            }

            var slices = tally.Slices;
            var peakRssKb = Math.Max(slices.Select(s => s.AzuriteRssKb).DefaultIfEmpty().Max(), ProcStats.StatusKb(azuritePid, "VmHWM"));
            if (failure is not null && ProcStats.TryRead(azuritePid) is null)
            {
                failure += "; the Azurite process is gone";
                Console.WriteLine("restart:  the Azurite process is gone; starting a new one on the same data folder to check what was kept ...");
                await azurite.DisposeAsync().ConfigureAwait(false);
                azurite = null;
                var restart = Stopwatch.StartNew();
                azurite = await EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, ct).ConfigureAwait(false);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"          answered after {restart.Elapsed.TotalSeconds:F1} s"));
                azuritePid = ProcStats.AzuritePid(location);
                storage = new AzureStorage(azurite.ConnectionString, prefix);
                spool = new AzureSpool(storage);
            }
            else
            {
                // Azurite saves its databases every 5 s: the figures at the end are of a save after the last commit.
                await WaitForSaveAsync(location, DateTime.UtcNow, ct).ConfigureAwait(false);
                peakRssKb = Math.Max(peakRssKb, ProcStats.StatusKb(azuritePid, "VmHWM"));
            }

            var filled = gauge.Measure();
            var check = await CheckScaleAsync(spool, options.Views ? new AzureClientViewStore(storage, TimeProvider.System) : null, tally, ct).ConfigureAwait(false);

            double? answerSeconds = null;
            long restartRssKb = 0;
            StoreCapacity? stopped = null;
            if (failure is not null)
            {
                // Nothing more to time: the store failed.
            }
            else if (options.Restart && File.Exists(options.CloudSpoolDll))
            {
                // A POP3 user for the edge, then Azurite stopped (SIGTERM: it saves its databases) and `cloudspool run`
                // started on the same data folder, as after a reboot: the time until POP3 answers with every message.
                var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
                var environment = new Dictionary<string, string>
                {
                    ["CLOUDSPOOL_CONFIG"] = Path.Combine(work.FullName, "cloudspool.json"),
                    ["CLOUDSPOOL__Storage__ConnectionString"] = azurite.ConnectionString,
                    ["CLOUDSPOOL__Storage__NamePrefix"] = prefix,
                };
                File.WriteAllText(environment["CLOUDSPOOL_CONFIG"], "{}\n");
                await AddEdgeUserAsync(options, environment, ScaleUser, password, ct).ConfigureAwait(false);
                await azurite.DisposeAsync().ConfigureAwait(false);
                azurite = null;
                stopped = gauge.Measure();
                environment.Remove("CLOUDSPOOL__Storage__ConnectionString");
                environment["CLOUDSPOOL__Storage__Azurite__Location"] = location;
                environment["CLOUDSPOOL__Storage__Azurite__BlobPort"] = EmbeddedAzurite.FreePort().ToString(CultureInfo.InvariantCulture);
                environment["CLOUDSPOOL__Storage__Azurite__QueuePort"] = EmbeddedAzurite.FreePort().ToString(CultureInfo.InvariantCulture);
                environment["CLOUDSPOOL__Storage__Azurite__TablePort"] = EmbeddedAzurite.FreePort().ToString(CultureInfo.InvariantCulture);
                Console.WriteLine();
                Console.WriteLine("restart:  Azurite stopped; starting `cloudspool run` on the same data folder ...");
                var clock = Stopwatch.StartNew();
                run = await EdgeProcess.StartAsync(options.CloudSpoolDll, environment, Path.Combine(work.FullName, "edge"), 256, prefetch: false, ct,
                    command: "run", listenTimeout: TimeSpan.FromMinutes(10)).ConfigureAwait(false);
                var server = new Server("run", "127.0.0.1", run.Port, false);
                await WaitForCountAsync(server, ScaleUser, password, tally.Committed, ct).ConfigureAwait(false);
                answerSeconds = clock.Elapsed.TotalSeconds;
                restartRssKb = ProcStats.StatusKb(ProcStats.AzuritePid(location), "VmRSS");
            }
            else if (options.Restart)
            {
                Console.WriteLine($"restart:  skipped ({options.CloudSpoolDll} not found; bench/run builds it)");
            }

            return ReportScale(options, slices, tally, empty, stopped ?? filled, peakRssKb, tally.Seconds, check, answerSeconds, restartRssKb, failure) ? 0 : 1;
        }
        finally
        {
            if (run is not null)
            {
                await run.StopAsync().ConfigureAwait(false);
                if (options.KeepTemp)
                {
                    File.WriteAllText(Path.Combine(work.FullName, "run.log"), run.Output);
                }
            }

            if (azurite is not null)
            {
                await azurite.DisposeAsync().ConfigureAwait(false);
            }

            if (options.KeepTemp)
            {
                Console.WriteLine($"work folder kept: {work.FullName}");
            }
            else
            {
                TryDelete(work.FullName);
            }
        }
    }

    /// <summary>
    /// Generates the messages (in seeded chunks, one chunk per core ahead, so generating does not hold the store back),
    /// writes them as a pull does and commits them one unit after the other; returns the figures of each tenth.
    /// </summary>
    private static async Task FillScaleAsync(Options options, string mailbox, AzureSpool spool, AzurePullLedger ledger, AzuriteCapacityGauge gauge, int azuritePid,
        ScaleTally tally, CancellationToken ct)
    {
        var n = options.Messages;
        var chunks = (n + ScaleChunk - 1) / ScaleChunk;
        var ahead = new Queue<Task<List<ScaleMessage>>>();
        var next = 0;
        void Refill()
        {
            while (next < chunks && ahead.Count < Environment.ProcessorCount + 1)
            {
                var c = next++;
                ahead.Enqueue(Task.Run(() => GenerateChunk(options, c, Math.Min(ScaleChunk, n - c * ScaleChunk)), ct));
            }
        }

        // Writes in flight: bounded by bytes as a pull's (16 permits of 1 MiB; a unit takes 1 to 16).
        using var budget = new SemaphoreSlim(16);
        var units = Channel.CreateUnbounded<ScaleUnit>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var committer = Task.Run(() => CommitScaleAsync(options, mailbox, spool, ledger, gauge, azuritePid, units.Reader, budget, tally, ct), ct);

        var packing = new List<ScaleMessage>();
        long packingBytes = 0;
        async Task StartAsync(List<ScaleMessage> members)
        {
            var bytes = members.Sum(m => (long)m.Bytes.Length);
            var permits = (int)Math.Clamp((bytes + (1 << 20) - 1) >> 20, 1, 16);
            // A unit waits for room (every permit it holds; the committer gives them back), unless the committer has
            // failed (its error is the one reported).
            for (var taken = 0; taken < permits;)
            {
                if (await budget.WaitAsync(1000, ct).ConfigureAwait(false))
                {
                    taken++;
                }
                else if (committer.IsCompleted)
                {
                    await committer.ConfigureAwait(false);
                    throw new BenchException("the committer stopped early");
                }
            }

            var packed = members.Count > 1;
            var write = packed
                ? spool.WritePackAsync(mailbox, members.Select(m => (m.Ingested, (Stream)new MemoryStream(m.Bytes, writable: false))).ToList(), ct)
                : WriteOwnAsync(spool, mailbox, members[0], ct);
            await units.Writer.WriteAsync(new ScaleUnit(members, packed, write, permits), ct).ConfigureAwait(false);
        }

        try
        {
            // The look-ahead is made before the first write, so the first tenth does not also pay for filling it.
            Refill();
            await Task.WhenAll(ahead).ConfigureAwait(false);
            while (ahead.Count > 0)
            {
                var chunk = await ahead.Dequeue().ConfigureAwait(false);
                Refill();
                foreach (var message in chunk)
                {
                    // As PullEngine decides (by the size the message stands for, in lean mode).
                    if (message.Nominal > PullDefaults.PackMessageBytes)
                    {
                        await StartAsync([message]).ConfigureAwait(false);
                        continue;
                    }

                    packing.Add(message);
                    packingBytes += message.Nominal;
                    if (packing.Count >= options.Batch || packingBytes >= PullDefaults.PackBytes)
                    {
                        await StartAsync(packing).ConfigureAwait(false);
                        packing = [];
                        packingBytes = 0;
                    }
                }
            }

            if (packing.Count > 0)
            {
                await StartAsync(packing).ConfigureAwait(false);
            }
        }
        finally
        {
            units.Writer.TryComplete();
        }

        await committer.ConfigureAwait(false);
    }

    private static async Task<IReadOnlyList<PackSlot>> WriteOwnAsync(AzureSpool spool, string mailbox, ScaleMessage message, CancellationToken ct)
    {
        await spool.WriteContentAsync(mailbox, message.Ingested, new MemoryStream(message.Bytes, writable: false), ct).ConfigureAwait(false);
        return [];
    }

    private static List<ScaleMessage> GenerateChunk(Options options, int chunk, int count)
    {
        var first = chunk * ScaleChunk;
        var generator = new MailboxGenerator(unchecked(options.Seed * 1_000_003 + chunk), first, options.Lean ? LeanDivisor : 1, fastBinary: true);
        var messages = new List<ScaleMessage>(count);
        for (var i = 0; i < count; i++)
        {
            var (raw, kind) = generator.Next();
            var served = ToCrlf(raw);
            // Dovecot's UIDL form (%08Xu%08Xv) as the upstream key; received now, as a pull stamps it.
            var uidl = string.Create(CultureInfo.InvariantCulture, $"{first + i + 1:X8}{0x5f3c0000 + options.Seed:X8}");
            var ingested = IngestedMessage.FromBytes(served, "bench", uidl, DateTimeOffset.UtcNow);
            messages.Add(new ScaleMessage(ingested, served, served.Length + generator.NominalExtra, kind));
        }

        return messages;
    }

    /// <summary>
    /// Commits the written units in order, one call at a time as a pull does (a pack in a call of its own; messages on
    /// their own together, up to the batch size), records them in the seen ledger every 200, and takes the figures of
    /// each tenth of the fill.
    /// </summary>
    private static async Task CommitScaleAsync(Options options, string mailbox, AzureSpool spool, AzurePullLedger ledger, AzuriteCapacityGauge gauge, int azuritePid,
        ChannelReader<ScaleUnit> units, SemaphoreSlim budget, ScaleTally tally, CancellationToken ct)
    {
        var n = options.Messages;
        var pending = new List<SeenEntry>();
        var sampler = new Random(options.Seed);
        var self = Process.GetCurrentProcess();
        var clock = new Stopwatch();
        var sliceStart = (Seconds: 0.0, Messages: 0, Bytes: 0L, Azurite: 0L, Bench: 0.0, Machine: 0L);
        var peakRssKb = 0L;
        var rssClock = Stopwatch.StartNew();
        var nextSlice = 1;
        while (await units.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            if (!clock.IsRunning)
            {
                // The clock starts with the first write under way: the first chunk's generation is not the store's time.
                clock.Start();
                self.Refresh();
                sliceStart = (0.0, 0, 0L, AzuriteTicks(azuritePid), self.TotalProcessorTime.TotalSeconds, ProcStats.MachineBusyTicks());
            }

            units.TryRead(out var first);
            var batch = new List<ScaleUnit> { first! };
            await first!.Write.ConfigureAwait(false);
            if (!first.Packed)
            {
                while (batch.Count < options.Batch && units.TryPeek(out var more) && !more.Packed && more.Write.IsCompleted)
                {
                    units.TryRead(out _);
                    batch.Add(more);
                    await more.Write.ConfigureAwait(false);
                }
            }

            var members = batch.SelectMany(u => u.Members).ToList();
            var placed = first.Packed
                ? first.Members.Select((m, i) => m.Ingested with { Pack = first.Write.Result[i] }).ToList()
                : members.Select(m => m.Ingested).ToList();
            var results = await spool.CommitAsync(mailbox, placed, ct).ConfigureAwait(false);
            budget.Release(batch.Sum(u => u.Permits));
            tally.Seconds = clock.Elapsed.TotalSeconds;
            tally.Commits++;
            if (first.Packed)
            {
                tally.Packs++;
            }
            else
            {
                tally.OwnBlobs += batch.Count;
            }

            for (var i = 0; i < members.Count; i++)
            {
                if (results[i].Outcome != StoreOutcome.Stored)
                {
                    throw new BenchException($"the spool took generated message {members[i].Ingested.SourceKey} as a duplicate");
                }

                var m = members[i];
                var key = results[i].MessageKey;
                tally.Committed++;
                tally.Bytes += m.Bytes.Length;
                tally.NominalBytes += m.Nominal;
                tally.Kinds[m.Kind]++;
                tally.Digest += EntryDigest(key, m.Ingested.Figures.Sha256, m.Bytes.Length);
                // A uniform sample of what was committed (reservoir sampling), read back at the end.
                if (tally.Sample.Count < ScaleSample)
                {
                    tally.Sample.Add((key, m.Ingested.Figures.Sha256, m.Bytes.Length));
                }
                else if (sampler.Next(tally.Committed) is var slot && slot < ScaleSample)
                {
                    tally.Sample[slot] = (key, m.Ingested.Figures.Sha256, m.Bytes.Length);
                }

                pending.Add(new SeenEntry(m.Ingested.SourceKey, m.Ingested.ReceivedAt, true, key, m.Ingested.Figures.Pop3Size));
            }

            if (tally.Views is { } views)
            {
                // A phone that deletes what it downloads: a QUIT hiding this commit's messages, merged as an edge merges them.
                var keys = results.Select(r => r.MessageKey).ToList();
                await views.HideAsync(mailbox, ScaleClient, keys, ct).ConfigureAwait(false);
                await views.CompactAsync(mailbox, ScaleClient, ct).ConfigureAwait(false);
                tally.Hidden += keys.Count;
                foreach (var key in keys)
                {
                    tally.HiddenDigest += EntryDigest(key, "", 0);
                }
            }

            if (pending.Count >= PullDefaults.SeenBatchSize || tally.Committed == n)
            {
                await ledger.MarkSeenAsync(mailbox, "", "pop3", pending, ct).ConfigureAwait(false);
                pending.Clear();
            }

            if (rssClock.Elapsed.TotalSeconds >= 1)
            {
                peakRssKb = Math.Max(peakRssKb, ProcStats.StatusKb(azuritePid, "VmRSS"));
                rssClock.Restart();
            }

            while (nextSlice <= 10 && tally.Committed >= (long)n * nextSlice / 10)
            {
                var now = clock.Elapsed.TotalSeconds;
                var azurite = AzuriteTicks(azuritePid);
                self.Refresh();
                var bench = self.TotalProcessorTime.TotalSeconds;
                var machine = ProcStats.MachineBusyTicks();
                var azuriteCpu = (azurite - sliceStart.Azurite) / ProcStats.TicksPerSecond;
                var benchCpu = bench - sliceStart.Bench;
                var otherCpu = Math.Max(0, (machine - sliceStart.Machine) / ProcStats.TicksPerSecond - azuriteCpu - benchCpu);
                var rss = ProcStats.StatusKb(azuritePid, "VmRSS");
                peakRssKb = Math.Max(peakRssKb, rss);
                var slice = new ScaleSlice(tally.Committed - sliceStart.Messages, tally.Bytes - sliceStart.Bytes, now - sliceStart.Seconds, azuriteCpu, benchCpu, otherCpu, Math.Max(rss, peakRssKb), gauge.Measure());
                tally.Slices.Add(slice);
                if (mailbox == ScaleUser)
                {
                    PrintSlice(nextSlice, tally.Committed, slice, rss, tally.Empty);
                }

                sliceStart = (now, tally.Committed, tally.Bytes, azurite, bench, machine);
                peakRssKb = 0;
                nextSlice++;
            }
        }

        if (pending.Count > 0)
        {
            await ledger.MarkSeenAsync(mailbox, "", "pop3", pending, ct).ConfigureAwait(false);
        }
    }

    private static long AzuriteTicks(int pid) => ProcStats.TreeTicks(ProcStats.Snapshot(), pid);

    /// <summary>An order-free sum over the messages: equal for the committed and the listed set only when every one is there once.</summary>
    private static UInt128 EntryDigest(string key, string sha256, long length)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{key}\n{sha256.ToLowerInvariant()}\n{length}")));
        return new UInt128(BitConverter.ToUInt64(hash, 0), BitConverter.ToUInt64(hash, 8));
    }

    private static void PrintSlice(int tenth, int committed, ScaleSlice slice, long rssKb, StoreCapacity? empty)
    {
        if (tenth == 1)
        {
            Console.WriteLine();
            Console.WriteLine("(CPU%: of one core over the slice; bench: generating, hashing and summarizing the messages, and the storage client; others: the");
            Console.WriteLine(" rest of the machine, which takes from the fill when it is busy;");
            Console.WriteLine(" DB: Azurite's database files as last saved (it saves every 5 s); B/msg: their growth since the start over the messages committed so far)");
            Console.WriteLine("  slice   messages   msgs/s    MiB/s   azurite CPU%   bench CPU%   others CPU%   azurite RSS MiB (peak)   table DB MiB  B/msg   blob DB MiB  B/msg");
        }

        var table = Db(slice.Databases, "table");
        var blob = Db(slice.Databases, "blob");
        var tableBefore = empty is null ? 0 : Db(empty, "table");
        var blobBefore = empty is null ? 0 : Db(empty, "blob");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{tenth * 10,6}%{committed,11}{slice.Messages / slice.Seconds,9:F0}{Program.Mib(slice.Bytes) / slice.Seconds,9:F1}{100 * slice.AzuriteCpu / slice.Seconds,15:F0}{100 * slice.BenchCpu / slice.Seconds,13:F0}{100 * slice.OtherCpu / slice.Seconds,14:F0}"
            + $"{rssKb / 1024.0,13:F0} ({slice.AzuriteRssKb / 1024.0,6:F0})    {Program.Mib(table),15:F1}{(double)(table - tableBefore) / committed,7:F0}{Program.Mib(blob),14:F1}{(double)(blob - blobBefore) / committed,7:F0}"));
    }

    private static long Db(StoreCapacity capacity, string name) => capacity.Databases.FirstOrDefault(d => d.Name == name)?.Bytes ?? 0;

    /// <summary>Waits (at most 20 s) until Azurite has saved its table and blob databases after <paramref name="after"/>.</summary>
    private static async Task WaitForSaveAsync(string location, DateTime after, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            var saved = new[] { "table", "blob" }.All(db =>
                File.Exists(Path.Combine(location, $"__azurite_db_{db}__.json")) && File.GetLastWriteTimeUtc(Path.Combine(location, $"__azurite_db_{db}__.json")) > after);
            if (saved)
            {
                return;
            }

            await Task.Delay(250, ct).ConfigureAwait(false);
        }
    }

    private sealed record ScaleCheck(int Listed, bool DigestMatches, bool Ordered, double ListSeconds, int Sampled, int SampleMissing, int SampleWrong, double ReadSeconds)
    {
        /// <summary>With --views: the keys the client's view lists back, and whether they are exactly the ones hidden.</summary>
        public (int Listed, bool DigestMatches, double Seconds)? View { get; init; }
    }

    /// <summary>
    /// The no-loss check: the mailbox's index listed back (ListIndexAsync) holds exactly the committed messages (count,
    /// and an order-free digest of key, SHA-256 and length), and a uniform sample of them read back hashes to what was written.
    /// </summary>
    private static async Task<ScaleCheck> CheckScaleAsync(AzureSpool spool, AzureClientViewStore? views, ScaleTally tally, CancellationToken ct)
    {
        Console.WriteLine();
        Console.WriteLine($"check:    listing the mailbox's index and reading back {tally.Sample.Count} sampled messages ...");
        var wanted = tally.Sample.ToDictionary(s => s.Key, StringComparer.Ordinal);
        var found = new List<(SpoolIndexEntry Entry, string Sha256)>();
        var clock = Stopwatch.StartNew();
        var listed = 0;
        UInt128 digest = 0;
        var ordered = true;
        string? last = null;
        await foreach (var entry in spool.ListIndexAsync(ScaleUser, null, ct).ConfigureAwait(false))
        {
            listed++;
            digest += EntryDigest(entry.MessageKey, entry.Sha256, entry.RawLength);
            ordered &= last is null || string.CompareOrdinal(last, entry.MessageKey) < 0;
            last = entry.MessageKey;
            if (wanted.TryGetValue(entry.MessageKey, out var sample))
            {
                found.Add((entry, sample.Sha256));
            }
        }

        var listSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var wrong = 0;
        foreach (var (entry, sha) in found)
        {
            await using var stream = await spool.OpenContentAsync(entry, ct).ConfigureAwait(false);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[81920];
            long length = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                length += read;
            }

            if (length != entry.RawLength || !string.Equals(Convert.ToHexStringLower(hash.GetHashAndReset()), sha, StringComparison.OrdinalIgnoreCase))
            {
                wrong++;
            }
        }

        var check = new ScaleCheck(listed, digest == tally.Digest, ordered, listSeconds, found.Count, tally.Sample.Count - found.Count, wrong, clock.Elapsed.TotalSeconds);
        if (views is not null)
        {
            clock.Restart();
            var hidden = await views.ListHiddenAsync(ScaleUser, ScaleClient, ct).ConfigureAwait(false);
            UInt128 hiddenDigest = 0;
            foreach (var key in hidden)
            {
                hiddenDigest += EntryDigest(key, "", 0);
            }

            check = check with { View = (hidden.Count, hiddenDigest == tally.HiddenDigest, clock.Elapsed.TotalSeconds) };
        }

        return check;
    }

    private static bool ReportScale(Options options, List<ScaleSlice> slices, ScaleTally tally, StoreCapacity empty, StoreCapacity end, long peakRssKb, double fillSeconds,
        ScaleCheck check, double? answerSeconds, long restartRssKb, string? failure)
    {
        var n = tally.Committed;
        var ok = failure is null;
        string Verdict(bool met)
        {
            ok &= met;
            return met ? "met" : "NOT met";
        }

        var lean = options.Lean ? string.Create(CultureInfo.InvariantCulture, $" (standing for {Program.Mib(tally.NominalBytes):F1} MiB)") : "";
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"filled:   {n} messages in {fillSeconds:F1} s ({n / Math.Max(fillSeconds, 1e-3):F0} msgs/s): {tally.Kinds[MailKind.Text]} text, {tally.Kinds[MailKind.Html]} HTML, "
            + $"{tally.Kinds[MailKind.Attachment]} with attachment, {tally.Kinds[MailKind.Large]} of about 5 MB; {Program.Mib(tally.Bytes):F1} MiB as served{lean}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"          {tally.Packs} packs and {tally.OwnBlobs} own blobs, {tally.Commits} commit calls, {(n + PullDefaults.SeenBatchSize - 1) / PullDefaults.SeenBatchSize} seen-ledger writes"));

        if (failure is not null)
        {
            Console.WriteLine($"FAILED:   the fill stopped after {n} of {options.Messages} messages ({slices.Count} tenths done): {failure}");
        }

        if (slices.Count >= 2)
        {
            var firstRate = slices[0].Messages / slices[0].Seconds;
            var lastRate = slices[^1].Messages / slices[^1].Seconds;
            var ratio = lastRate / firstRate;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"rate:     first tenth {firstRate:F0} msgs/s, last tenth {lastRate:F0} msgs/s: last/first {ratio:F2} (target >= {ScaleTargetSliceRatio:F2}: {Verdict(ratio >= ScaleTargetSliceRatio)})"));
            // The rate can be held by the generator (the bench's CPU) when the machine is busy or Azurite is fast: the CPU
            // Azurite spends per message is the store's own cost, and its growth the store's own slowdown.
            var firstCost = slices[0].AzuriteCpu / slices[0].Messages;
            var lastCost = slices[^1].AzuriteCpu / slices[^1].Messages;
            var storeRatio = firstCost / lastCost;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"          azurite CPU per 1,000 messages: first tenth {1000 * firstCost:F2} s, last tenth {1000 * lastCost:F2} s: the rate Azurite alone could keep, last/first {storeRatio:F2} (target >= {ScaleTargetSliceRatio:F2}: {Verdict(storeRatio >= ScaleTargetSliceRatio)})"));
            var held = slices.Select((s, i) => (Tenth: (i + 1) * 10, Share: s.BenchCpu / s.Seconds)).Where(s => s.Share >= 0.9).ToList();
            if (held.Count > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"          NOTE: the bench used 90% or more of a core in the tenths ending at {string.Join(", ", held.Select(h => $"{h.Tenth}%"))}: there the generator may have held the rate, not the store"));
            }
        }
        var busy = slices.Select((s, i) => (Tenth: (i + 1) * 10, Share: s.OtherCpu / (s.Seconds * Environment.ProcessorCount))).Where(s => s.Share > 0.1).ToList();
        if (busy.Count > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"          NOTE: other processes used more than 10% of the machine in the tenths ending at {string.Join(", ", busy.Select(b => $"{b.Tenth}% ({100 * b.Share:F0}%)"))}: those rates are disturbed; rerun on an idle machine"));
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"memory:   azurite peak RSS {peakRssKb / 1024.0:F0} MiB (target < 1 GB: {Verdict(peakRssKb * 1024L < ScaleTargetRssBytes)})"));

        Console.WriteLine();
        Console.WriteLine($"databases (Azurite's files{(answerSeconds is null ? "" : ", saved when it stopped")}; limit {end.Databases.FirstOrDefault()?.LimitBytes / 1048576.0 ?? 0:F1} MiB each):");
        Console.WriteLine("  database         empty MiB   at end MiB   bytes/msg   % of limit   at 1,000,000 msgs MiB   % of limit");
        foreach (var db in end.Databases.Where(d => !d.Name.StartsWith("queue", StringComparison.Ordinal)))
        {
            var before = empty.Databases.FirstOrDefault(d => d.Name == db.Name)?.Bytes ?? 0;
            var perMessage = (double)(db.Bytes - before) / Math.Max(n, 1);
            var at = before + perMessage * ScaleAim;
            var judged = db.Name is "table" or "blob";
            var target = judged && n >= ScaleAim ? $"  (target < 50%: {Verdict(db.Share < ScaleTargetShare)})" : "";
            var projected = judged ? $"  (target < 50% at 1,000,000: {(at < ScaleTargetShare * db.LimitBytes ? "on course" : "NOT on course")})" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {db.Name,-15}{Program.Mib(before),10:F1}{Program.Mib(db.Bytes),13:F1}{perMessage,12:F0}{100 * db.Share,12:F1}%{Program.Mib((long)at),24:F1}{100 * at / db.LimitBytes,12:F1}%{target}{projected}"));
        }

        Console.WriteLine();
        var complete = check.Listed == n && check.DigestMatches && check.Ordered && check.SampleMissing == 0 && check.SampleWrong == 0
            && (check.View is not { } v || (v.Listed == tally.Hidden && v.DigestMatches));
        ok &= complete;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"no loss:  {check.Listed} of {n} committed messages listed back in {check.ListSeconds:F1} s (ListIndexAsync), keys {(check.Ordered ? "in order" : "OUT OF ORDER")}, "
            + $"key/SHA-256/length digest {(check.DigestMatches ? "matches" : "DIFFERS")}; {check.Sampled} sampled messages read back in {check.ReadSeconds:F1} s, "
            + $"{check.SampleMissing} missing, {check.SampleWrong} with wrong bytes: {(complete ? "every message is there" : "MESSAGES LOST OR WRONG")}"));
        if (check.View is { } view)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"view:     {ScaleClient} deleted every message ({tally.Hidden} hidden, a QUIT a commit, merged as the edge merges): {view.Listed} listed back in {view.Seconds:F1} s, "
                + $"keys {(view.DigestMatches ? "exactly those hidden" : "NOT THOSE HIDDEN")}; the databases above include the view"));
        }
        if (answerSeconds is { } seconds)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"restart:  `cloudspool run` answered POP3 with all {n} messages {seconds:F1} s after it was started (cold edge, Azurite loading its databases); "
                + $"azurite RSS then {restartRssKb / 1024.0:F0} MiB (target < {ScaleTargetAnswerSeconds:F0} s: {Verdict(seconds < ScaleTargetAnswerSeconds)})"));
        }

        if (n < ScaleAim)
        {
            Console.WriteLine($"NOTE: {n} messages, not 1,000,000: the database targets are judged by the extrapolation only; run bench/run scale for the real figures");
        }

        return ok;
    }
}
