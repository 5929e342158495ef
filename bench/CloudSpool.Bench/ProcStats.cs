using System.Globalization;

namespace CloudSpool.Bench;

/// <summary>CPU time and memory of process trees, read from /proc (Linux).</summary>
public static class ProcStats
{
    /// <summary>Clock ticks per second of /proc/PID/stat times (USER_HZ; 100 on every Linux this runs on).</summary>
    public const double TicksPerSecond = 100;

    /// <summary>One line of /proc/PID/stat, parsed.</summary>
    public readonly record struct Stat(int Pid, string Comm, int ParentPid, long OwnTicks, long ReapedChildTicks, long StartTime);

    /// <summary>Every live process (those that vanish while being read are skipped).</summary>
    public static Dictionary<int, Stat> Snapshot()
    {
        var result = new Dictionary<int, Stat>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            if (TryRead(pid) is { } stat)
            {
                result[pid] = stat;
            }
        }

        return result;
    }

    public static Stat? TryRead(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // "pid (comm) state ppid ..." where comm may contain spaces and parentheses: split after the last ')'.
        var open = text.IndexOf('(', StringComparison.Ordinal);
        var close = text.LastIndexOf(')');
        if (open < 0 || close < open)
        {
            return null;
        }

        var comm = text[(open + 1)..close];
        var fields = text[(close + 2)..].Split(' ');
        // fields[0] = state (field 3), [1] = ppid (4), [11] utime (14), [12] stime (15), [13] cutime (16), [14] cstime (17), [19] starttime (22).
        long F(int i) => long.Parse(fields[i], CultureInfo.InvariantCulture);
        return new Stat(pid, comm, (int)F(1), F(11) + F(12), F(13) + F(14), F(19));
    }

    /// <summary>
    /// CPU ticks of <paramref name="root"/> and its live descendants, including children they have already reaped
    /// (Dovecot's master reaps each finished pop3 process, so its CPU time stays counted).
    /// </summary>
    public static long TreeTicks(Dictionary<int, Stat> snapshot, int root)
    {
        long total = 0;
        foreach (var pid in Tree(snapshot, root))
        {
            var s = snapshot[pid];
            total += s.OwnTicks + s.ReapedChildTicks;
        }

        return total;
    }

    /// <summary><paramref name="root"/> and its descendants that are in the snapshot.</summary>
    public static List<int> Tree(Dictionary<int, Stat> snapshot, int root)
    {
        var result = new List<int>();
        if (!snapshot.ContainsKey(root))
        {
            return result;
        }

        var children = snapshot.Values.ToLookup(s => s.ParentPid, s => s.Pid);
        var queue = new Queue<int>([root]);
        while (queue.TryDequeue(out var pid))
        {
            result.Add(pid);
            foreach (var child in children[pid])
            {
                queue.Enqueue(child);
            }
        }

        return result;
    }

    /// <summary>Busy CPU ticks of the whole machine since boot (user, nice, system, irq, softirq, steal of /proc/stat).</summary>
    public static long MachineBusyTicks()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        long F(int i) => long.Parse(fields[i], CultureInfo.InvariantCulture);
        return F(1) + F(2) + F(3) + F(6) + F(7) + F(8);
    }

    /// <summary>A value in kB from /proc/PID/status (VmRSS, VmHWM), or 0.</summary>
    public static long StatusKb(int pid, string field)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                {
                    return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone.
        }

        return 0;
    }

    /// <summary>The Azurite process whose data folder is <paramref name="location"/> (node itself, or its launcher).</summary>
    public static int AzuritePid(string location) =>
        FindByCommandLine(location, "node") ?? FindByCommandLine(location) ?? throw new Program.BenchException("Azurite process not found");

    /// <summary>The first process whose command line contains <paramref name="needle"/> (and whose comm matches, if given).</summary>
    public static int? FindByCommandLine(string needle, string? comm = null)
    {
        foreach (var (pid, stat) in Snapshot())
        {
            if (pid == Environment.ProcessId || (comm is not null && stat.Comm != comm))
            {
                continue;
            }

            try
            {
                var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
                if (cmdline.Contains(needle, StringComparison.Ordinal))
                {
                    return pid;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone.
            }
        }

        return null;
    }
}

/// <summary>
/// Samples the CPU use of the measured tool, Azurite and Dovecot once a second while a tool runs,
/// for the "where does the time go" lines of the report.
/// </summary>
public sealed class CpuSampler : IAsyncDisposable
{
    private readonly Dictionary<string, int> _roots;
    private readonly Func<int?> _toolRoot;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly List<(double Seconds, Dictionary<string, long> Ticks)> _samples = [];

    public CpuSampler(Dictionary<string, int> roots, Func<int?> toolRoot)
    {
        _roots = roots;
        _toolRoot = toolRoot;
        Start = Take();
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Ticks per group when sampling started.</summary>
    public Dictionary<string, long> Start { get; }

    /// <summary>Per-second samples: seconds since start, ticks per group ("tool" = the measured tool's tree).</summary>
    public IReadOnlyList<(double Seconds, Dictionary<string, long> Ticks)> Samples => _samples;

    /// <summary>Peak RSS in kB seen per group by the samples (sum over the group's processes).</summary>
    public Dictionary<string, long> PeakRssKb { get; } = [];

    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>CPU ticks of live processes outside the measured groups, by command name (this bench included, as "bench").</summary>
    public Dictionary<string, long> OtherTicksByCommand { get; } = [];

    private Dictionary<int, ProcStats.Stat>? _previous;

    private Dictionary<string, long> Take()
    {
        var snapshot = ProcStats.Snapshot();
        var ticks = new Dictionary<string, long>();
        var measured = new HashSet<int>();
        foreach (var (name, root) in _roots)
        {
            ticks[name] = ProcStats.TreeTicks(snapshot, root);
            Rss(name, snapshot, root);
            measured.UnionWith(ProcStats.Tree(snapshot, root));
        }

        ticks["machine"] = ProcStats.MachineBusyTicks();
        if (_toolRoot() is { } tool)
        {
            ticks["tool"] = ProcStats.TreeTicks(snapshot, tool);
            Rss("tool", snapshot, tool);
            measured.UnionWith(ProcStats.Tree(snapshot, tool));
        }

        lock (OtherTicksByCommand)
        {
            if (_previous is not null)
            {
                foreach (var (pid, stat) in snapshot)
                {
                    if (measured.Contains(pid))
                    {
                        continue;
                    }

                    // A process that was not there at the previous sample started since. Own time only: a parent's
                    // reaped-children time jumps by a child's whole lifetime when it is reaped. (Processes that live
                    // less than a second are missed here; the "other" total from /proc/stat still has them.)
                    var before = _previous.TryGetValue(pid, out var p) && p.StartTime == stat.StartTime ? p.OwnTicks : 0;
                    var delta = stat.OwnTicks - before;
                    if (delta > 0)
                    {
                        var comm = pid == Environment.ProcessId ? "bench" : stat.Comm.Split('/')[0];
                        OtherTicksByCommand[comm] = OtherTicksByCommand.GetValueOrDefault(comm) + delta;
                    }
                }
            }

            _previous = snapshot;
        }

        return ticks;
    }

    private void Rss(string name, Dictionary<int, ProcStats.Stat> snapshot, int root)
    {
        var rss = ProcStats.Tree(snapshot, root).Sum(pid => ProcStats.StatusKb(pid, "VmRSS"));
        PeakRssKb[name] = Math.Max(PeakRssKb.GetValueOrDefault(name), rss);
    }

    private async Task LoopAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                await Task.Delay(1000, _stop.Token).ConfigureAwait(false);
                var ticks = Take();
                lock (_samples)
                {
                    _samples.Add((_clock.Elapsed.TotalSeconds, ticks));
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    /// <summary>Stops sampling and returns the ticks per group at the end.</summary>
    public async Task<Dictionary<string, long>> StopAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        return Take();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }
}
