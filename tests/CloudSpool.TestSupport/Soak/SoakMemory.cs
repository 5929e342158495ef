using System.Globalization;

namespace CloudSpool.TestSupport.Soak;

/// <summary>
/// Samples VmRSS (/proc/PID/status) of the processes the soak started and their children, each named by what it is
/// (worker, edge, azurite, dovecot, aiosmtpd), and keeps the maximum per process and per name. Processes are found by
/// their id or by a marker in their command line (the private data folder or port of that server), so other work on
/// the machine, or other tests in the same test host, are not counted.
/// </summary>
public sealed class SoakMemory
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _maxKb = new(StringComparer.Ordinal);
    private readonly Dictionary<int, string> _pids = [];
    private readonly List<(string Marker, string Name)> _markers = [];

    /// <summary>Largest VmRSS seen of any one process of each name, in kB.</summary>
    public IReadOnlyDictionary<string, long> MaxKb
    {
        get { lock (_lock) return new Dictionary<string, long>(_maxKb, StringComparer.Ordinal); }
    }

    public void Track(int pid, string name)
    {
        lock (_lock)
            _pids[pid] = name;
    }

    public void TrackMarker(string marker, string name)
    {
        lock (_lock)
            _markers.Add((marker, name));
    }

    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Sample();
            try
            {
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public void Sample()
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && ParentOf(pid) is { } parent)
                parents[pid] = parent;
        }
        var self = Environment.ProcessId;
        var labels = new Dictionary<int, string?>();
        foreach (var pid in parents.Keys)
        {
            if (Label(pid, self, parents, labels) is not { } name || RssKb(pid) is not { } kb)
                continue;
            lock (_lock)
                _maxKb[name] = Math.Max(_maxKb.GetValueOrDefault(name), kb);
        }
    }

    /// <summary>The name of the nearest tracked process among <paramref name="pid"/> and its ancestors below this one.</summary>
    private string? Label(int pid, int self, Dictionary<int, int> parents, Dictionary<int, string?> labels)
    {
        if (pid == self || pid <= 1)
            return null;
        if (labels.TryGetValue(pid, out var known))
            return known;
        labels[pid] = null; // guards against a cycle while the table is read
        var own = OwnLabel(pid);
        var label = own ?? (parents.TryGetValue(pid, out var parent) ? Label(parent, self, parents, labels) : null);
        labels[pid] = label;
        return label;
    }

    private string? OwnLabel(int pid)
    {
        lock (_lock)
        {
            if (_pids.TryGetValue(pid, out var name))
                return name;
            if (_markers.Count == 0)
                return null;
        }
        string cmdline;
        try
        {
            cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        lock (_lock)
            return _markers.FirstOrDefault(m => cmdline.Contains(m.Marker, StringComparison.Ordinal)).Name;
    }

    private static int? ParentOf(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    private static long? RssKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            // gone
        }
        return null;
    }
}
