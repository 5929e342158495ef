namespace CloudSpool.TestSupport.Soak;

/// <summary>How long and how hard a soak runs. The fault timeline is laid over <see cref="LoadDuration"/>.</summary>
public sealed record SoakOptions
{
    /// <summary>How long mail is delivered upstream and faults are injected (they end by 80 % of it).</summary>
    public TimeSpan LoadDuration { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>How long, after the load, everything may take to settle before the checks count what is missing.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromMinutes(4);

    /// <summary>Mean time between two messages delivered upstream.</summary>
    public TimeSpan DeliveryInterval { get; init; } = TimeSpan.FromMilliseconds(800);

    /// <summary>Inject the faults (false: the pieces run together undisturbed).</summary>
    public bool Faults { get; init; } = true;

    public int Seed { get; init; } = 7;

    /// <summary>The largest resident memory allowed to any one process (worker, edge, Azurite, Dovecot, aiosmtpd).</summary>
    public long MemoryBoundBytes { get; init; } = 1L << 30;

    /// <summary>The test corpus's message files (odd real-world mail), each delivered once.</summary>
    public IReadOnlyList<string> CorpusFiles { get; init; } = [];

    /// <summary>Progress lines (timestamped by the runner).</summary>
    public Action<string> Log { get; init; } = _ => { };
}

/// <summary>What a soak measured (<see cref="Figures"/>) and every invariant it found broken (<see cref="Failures"/>).</summary>
public sealed class SoakReport
{
    public List<string> Figures { get; } = [];
    public List<string> Failures { get; } = [];
    public bool Passed => Failures.Count == 0;

    public override string ToString() =>
        string.Join('\n', Figures.Append(Passed ? "soak: every check passed" : $"soak: {Failures.Count} checks FAILED:").Concat(Failures.Select(f => "  FAILED " + f)));
}
