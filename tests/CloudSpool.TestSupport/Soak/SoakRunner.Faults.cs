using System.Globalization;
using CloudSpool.Host.Azurite;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.TestSupport.Soak;

/// <summary>
/// The fault timeline: one cycle of faults, one after another, each starting and ending at a fraction of the cycle
/// (a fault lasts at least <see cref="MinimumFault"/> however short the cycle); the load holds one cycle per
/// <see cref="FaultCycle"/> (a 30-minute soak goes through six), and the last one ends by 80 % of its cycle.
/// </summary>
public sealed partial class SoakRunner
{
    private static readonly TimeSpan FaultCycle = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan MinimumFault = TimeSpan.FromSeconds(8);
    private DateTime _cycleStart;
    private TimeSpan _cycleLength;

    /// <summary>Waits until <paramref name="fraction"/> of the current cycle has passed.</summary>
    private async Task AtAsync(double fraction, CancellationToken ct)
    {
        var due = _cycleStart + _cycleLength * fraction;
        var wait = due - DateTime.UtcNow;
        if (wait > TimeSpan.Zero)
            await Task.Delay(wait, ct).ConfigureAwait(false);
    }

    /// <summary>Waits until <paramref name="fraction"/> of the cycle, and at least <see cref="MinimumFault"/> after <paramref name="started"/>.</summary>
    private async Task HoldAsync(DateTime started, double fraction, CancellationToken ct)
    {
        await AtAsync(fraction, ct).ConfigureAwait(false);
        var rest = started + MinimumFault - DateTime.UtcNow;
        if (rest > TimeSpan.Zero)
            await Task.Delay(rest, ct).ConfigureAwait(false);
    }

    private void Fault(string text)
    {
        var line = string.Create(CultureInfo.InvariantCulture, $"t+{(DateTime.UtcNow - _loadStart).TotalSeconds,5:F0}s {text}");
        lock (_faultLog)
            _faultLog.Add(line);
        Log("fault: " + text);
    }

    private async Task InjectFaultsAsync(CancellationToken ct)
    {
        var random = new Random(_options.Seed + 2);
        var cycles = Math.Max(1, (int)Math.Round(_options.LoadDuration / FaultCycle));
        _cycleLength = _options.LoadDuration / cycles;
        for (var cycle = 0; cycle < cycles; cycle++)
        {
            _cycleStart = _loadStart + _cycleLength * cycle;
            await FaultCycleAsync(random, ct).ConfigureAwait(false);
        }
    }

    private async Task FaultCycleAsync(Random random, CancellationToken ct)
    {
        await AtAsync(0.05, ct).ConfigureAwait(false);
        Fault("upstream Dovecot stopped");
        var started = DateTime.UtcNow;
        await _dovecot!.StopAsync().ConfigureAwait(false);
        await HoldAsync(started, 0.12, ct).ConfigureAwait(false);
        await _dovecot.RestartAsync(ct).ConfigureAwait(false);
        Fault("upstream Dovecot restarted");

        await AtAsync(0.14, ct).ConfigureAwait(false);
        Fault("worker-to-upstream connections cut mid-transfer (POP3 through the cutting proxy)");
        await CutWhileAsync(_upstreamProxy!, 0.22, 200_000, random, ct).ConfigureAwait(false);
        Fault($"worker-to-upstream cuts over ({_upstreamProxy!.Cuts} connections cut so far)");

        await AtAsync(0.24, ct).ConfigureAwait(false);
        Fault("client-to-edge connections cut mid-RETR (alice+phone, bob through the cutting proxy)");
        await CutWhileAsync(_clientProxy!, 0.32, 20_000, random, ct).ConfigureAwait(false);
        Fault($"client-to-edge cuts over ({_clientProxy!.Cuts} connections cut so far)");

        await AtAsync(0.34, ct).ConfigureAwait(false);
        await KillAndRestartWorkerAsync(ct).ConfigureAwait(false);

        await AtAsync(0.38, ct).ConfigureAwait(false);
        var second = StartWorker();
        Fault($"second worker started beside the first (pid {second.Id})");

        await AtAsync(0.42, ct).ConfigureAwait(false);
        Fault("SMTP server (the phone's relay) stopped");
        started = DateTime.UtcNow;
        await _smtp!.StopProcessAsync().ConfigureAwait(false);
        await HoldAsync(started, 0.48, ct).ConfigureAwait(false);
        await _smtp.StartProcessAsync().ConfigureAwait(false);
        Fault("SMTP server started again");

        await AtAsync(0.50, ct).ConfigureAwait(false);
        _smtp.SetBehaviour(new Dictionary<string, string> { [Phone] = "451 4.3.0 soak: try again later" });
        Fault("SMTP server answers 451 (temporary) to every RCPT");
        await HoldAsync(DateTime.UtcNow, 0.56, ct).ConfigureAwait(false);
        _smtp.SetBehaviour();
        Fault("SMTP server accepts again");

        await AtAsync(0.58, ct).ConfigureAwait(false);
        started = DateTime.UtcNow;
        await _azurite!.DisposeAsync().ConfigureAwait(false);
        Fault(string.Create(CultureInfo.InvariantCulture, $"Azurite stopped (SIGTERM; exited after {(DateTime.UtcNow - started).TotalSeconds:F1} s)"));
        await HoldAsync(started, 0.64, ct).ConfigureAwait(false);
        started = DateTime.UtcNow;
        _azurite = await EmbeddedAzurite.StartAsync(_azuriteOptions, NullLogger.Instance, ct).ConfigureAwait(false);
        Fault(string.Create(CultureInfo.InvariantCulture, $"Azurite restarted on the same ports and data (answering after {(DateTime.UtcNow - started).TotalSeconds:F1} s)"));

        await AtAsync(0.66, ct).ConfigureAwait(false);
        Fault($"second worker (pid {second.Id}) stopped (SIGTERM)");
        MarkStopped(second);
        await second.TerminateAsync().ConfigureAwait(false);

        await AtAsync(0.68, ct).ConfigureAwait(false);
        Fault("hostile POP3 clients against the edge (garbage, command flood, 1 MiB line, slowloris, idle burst)");
        _hostile ??= new SoakHostileClients(() => _edgePort, _options.Seed + 3);
        using (var hostile = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var attacks = Task.WhenAll(Enumerable.Range(0, 2).Select(_ => _hostile.RunAsync(hostile.Token)));
            // At least two minimums: every kind of attack gets its turn.
            await HoldAsync(DateTime.UtcNow + MinimumFault, 0.78, ct).ConfigureAwait(false);
            await hostile.CancelAsync().ConfigureAwait(false);
            await attacks.ConfigureAwait(false);
        }
        Fault($"hostile clients over: {_hostile.Attacks} attacks so far, {_hostile.CutOff} cut off by the edge");

        await AtAsync(0.80, ct).ConfigureAwait(false);
        await KillAndRestartWorkerAsync(ct).ConfigureAwait(false);
    }

    /// <summary>kill -9 of a running worker (whatever it is doing), and a new one a second later.</summary>
    private async Task KillAndRestartWorkerAsync(CancellationToken ct)
    {
        var victim = LiveWorkers().First();
        Fault($"worker (pid {victim.Id}) killed with SIGKILL");
        MarkStopped(victim);
        victim.KillHard();
        await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
        Fault($"worker restarted (pid {StartWorker().Id})");
    }

    /// <summary>Cuts connections through <paramref name="proxy"/> after a random number of server bytes until the fraction is reached.</summary>
    private async Task CutWhileAsync(Fixtures.CuttingProxy proxy, double until, int maxBytes, Random random, CancellationToken ct)
    {
        var due = _cycleStart + _cycleLength * until;
        if (due < DateTime.UtcNow + MinimumFault)
            due = DateTime.UtcNow + MinimumFault;
        while (DateTime.UtcNow < due)
        {
            proxy.CutAfterBytes = random.Next(100, maxBytes);
            await Task.Delay(TimeSpan.FromMilliseconds(700), ct).ConfigureAwait(false);
        }
        proxy.CutAfterBytes = null;
    }

    private List<Fixtures.CliProcess> LiveWorkers()
    {
        lock (_workers)
            return [.. _workers.Where(w => !w.HasExited && !_stoppedOnPurpose.Contains(w))];
    }

    private void MarkStopped(Fixtures.CliProcess worker)
    {
        lock (_workers)
            _stoppedOnPurpose.Add(worker);
    }
}
