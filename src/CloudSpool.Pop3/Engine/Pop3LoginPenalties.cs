using System.Net;
using System.Net.Sockets;

namespace CloudSpool.Pop3.Engine;

/// <summary>What a failed login costs the address it came from.</summary>
/// <param name="Delay">How long to wait before answering it.</param>
/// <param name="RecentFailures">Failures from the address within the window, this one included.</param>
/// <param name="Lockout">How long the address is now refused at login; zero when it is not.</param>
internal readonly record struct Pop3LoginPenalty(TimeSpan Delay, int RecentFailures, TimeSpan Lockout);

/// <summary>
/// Failed logins per remote address, shared by every session of a server: each failure within
/// <see cref="Pop3ServerOptions.FailedLoginWindow"/> doubles the delay before the next failure is answered (from
/// <see cref="Pop3ServerOptions.FailedLoginDelay"/> up to <see cref="Pop3ServerOptions.MaxFailedLoginDelay"/>);
/// failures older than the window are forgotten; at <see cref="Pop3ServerOptions.MaxFailedLogins"/> the address is
/// refused at login for <see cref="Pop3ServerOptions.FailedLoginLockout"/>. A successful login clears its address.
/// Other addresses are never affected.
/// </summary>
/// <remarks>
/// IPv6 addresses count per /64 (one host can take any address of its /64); IPv4-mapped IPv6 addresses count as
/// IPv4. Memory is bounded: at most <see cref="Pop3ServerOptions.MaxFailedLogins"/> timestamps per address, stale
/// addresses are swept as the table grows, and beyond <see cref="MaxTrackedAddresses"/> a new address is not
/// tracked (it still gets the base delay).
/// </remarks>
internal sealed class Pop3LoginPenalties
{
    /// <summary>Addresses tracked at most at once.</summary>
    public const int MaxTrackedAddresses = 65_536;

    private const int FirstSweepAt = 1024;

    private readonly Pop3ServerOptions _options;
    private readonly TimeProvider _clock;
    private readonly Dictionary<IPAddress, Entry> _entries = [];
    private readonly Lock _lock = new();
    private int _sweepAt = FirstSweepAt;

    public Pop3LoginPenalties(Pop3ServerOptions options)
    {
        _options = options;
        _clock = options.TimeProvider;
    }

    /// <summary>Addresses tracked now (failures in the window, or locked out).</summary>
    public int TrackedAddresses
    {
        get
        {
            lock (_lock)
                return _entries.Count;
        }
    }

    /// <summary>Time left before <paramref name="remote"/> may try to log in again; null when it may now.</summary>
    public TimeSpan? LockoutLeft(IPEndPoint? remote)
    {
        if (remote is null)
            return null;
        var now = _clock.GetUtcNow();
        lock (_lock)
        {
            if (!_entries.TryGetValue(KeyOf(remote.Address), out var entry) || entry.LockedUntil <= now)
                return null;
            return entry.LockedUntil - now;
        }
    }

    /// <summary>Counts a failed login from <paramref name="remote"/> and returns what it costs.</summary>
    public Pop3LoginPenalty RecordFailure(IPEndPoint? remote)
    {
        if (remote is null)
            return new Pop3LoginPenalty(_options.FailedLoginDelay, 1, TimeSpan.Zero);
        var now = _clock.GetUtcNow();
        var key = KeyOf(remote.Address);
        lock (_lock)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                if (_entries.Count >= _sweepAt)
                    Sweep(now);
                if (_entries.Count >= MaxTrackedAddresses)
                    return new Pop3LoginPenalty(_options.FailedLoginDelay, 1, TimeSpan.Zero);
                entry = new Entry();
                _entries[key] = entry;
            }
            entry.Forget(now - _options.FailedLoginWindow);
            entry.Failures.Enqueue(now);
            var failures = entry.Failures.Count;
            var lockout = TimeSpan.Zero;
            if (failures >= _options.MaxFailedLogins)
            {
                lockout = _options.FailedLoginLockout;
                entry.LockedUntil = now + lockout;
                // The lockout is the penalty now; afterwards the address starts afresh.
                entry.Failures.Clear();
            }
            return new Pop3LoginPenalty(DelayFor(failures), failures, lockout);
        }
    }

    /// <summary>A successful login from <paramref name="remote"/>: its failures are forgotten.</summary>
    public void RecordSuccess(IPEndPoint? remote)
    {
        if (remote is null)
            return;
        lock (_lock)
            _entries.Remove(KeyOf(remote.Address));
    }

    /// <summary>The address failures count against: IPv4 as it is, IPv6 by its /64.</summary>
    public static IPAddress KeyOf(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
            return address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return address;
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }

    private TimeSpan DelayFor(int failures)
    {
        var delay = _options.FailedLoginDelay;
        for (var i = 1; i < failures && delay < _options.MaxFailedLoginDelay; i++)
            delay += delay;
        return delay < _options.MaxFailedLoginDelay ? delay : _options.MaxFailedLoginDelay;
    }

    private void Sweep(DateTimeOffset now)
    {
        var horizon = now - _options.FailedLoginWindow;
        foreach (var (key, entry) in _entries)
        {
            entry.Forget(horizon);
            if (entry.Failures.Count == 0 && entry.LockedUntil <= now)
                _entries.Remove(key);
        }
        _sweepAt = Math.Max(FirstSweepAt, _entries.Count * 2);
    }

    private sealed class Entry
    {
        public Queue<DateTimeOffset> Failures { get; } = new();

        public DateTimeOffset LockedUntil { get; set; }

        public void Forget(DateTimeOffset before)
        {
            while (Failures.TryPeek(out var oldest) && oldest <= before)
                Failures.Dequeue();
        }
    }
}
