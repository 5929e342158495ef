using System.Net;
using System.Net.Sockets;

namespace CloudSpool.Pop3;

/// <summary>Which count locked a login out.</summary>
public enum LoginScope
{
    /// <summary>The failures from the client's address (IPv6 per /64).</summary>
    Address,

    /// <summary>The failures of the user name, from every address.</summary>
    User,
}

/// <summary>Settings of a <see cref="LoginThrottle"/>.</summary>
public sealed class LoginThrottleOptions
{
    /// <summary>Delay before answering the first failure; doubles with each further one, up to <see cref="MaxFailureDelay"/>.</summary>
    public TimeSpan FailureDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest delay before answering a failure.</summary>
    public TimeSpan MaxFailureDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a failure counts; older ones are forgotten.</summary>
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Failures within <see cref="Window"/> after which an address (or a user, with <see cref="PerUser"/>) is refused at
    /// login for <see cref="Lockout"/>, even with the right password. Attempts still being checked count too: no more
    /// than this many are ever checked in a window.
    /// </summary>
    public int MaxFailures { get; init; } = 10;

    /// <summary>How long a locked address or user is refused.</summary>
    public TimeSpan Lockout { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Also count failures per user name, across addresses, and lock the user out (the status page).</summary>
    public bool PerUser { get; init; }

    /// <summary>Attempts from one address checked at once at most (the others wait their turn); null: only <see cref="MaxFailures"/> bounds them.</summary>
    public int? MaxConcurrentPerAddress { get; init; }

    /// <summary>The clock of windows and lockouts.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>What a failed login costs.</summary>
/// <param name="Delay">How long to wait before answering it.</param>
/// <param name="RecentFailures">Failures from the address within the window, this one included (0 when not tracked).</param>
/// <param name="UserFailures">Failures of the user within the window, this one included (0 without <see cref="LoginThrottleOptions.PerUser"/>).</param>
/// <param name="Lockout">How long the address and/or user is now refused; zero when neither is.</param>
/// <param name="AddressLocked">This failure locked the address out.</param>
/// <param name="UserLocked">This failure locked the user out.</param>
public readonly record struct LoginPenalty(TimeSpan Delay, int RecentFailures, int UserFailures, TimeSpan Lockout, bool AddressLocked, bool UserLocked);

/// <summary>Why a login is refused before any credential is checked.</summary>
/// <param name="Scope">The address or the user is locked out.</param>
/// <param name="Left">How long it stays locked.</param>
public readonly record struct LoginRefusal(LoginScope Scope, TimeSpan Left)
{
    /// <summary>A wait in words for a client, rounded up: "14 minutes", "1 minute", "30 seconds".</summary>
    public static string Describe(TimeSpan wait)
    {
        if (wait >= TimeSpan.FromMinutes(1))
        {
            var minutes = (long)Math.Ceiling(wait.TotalMinutes);
            return minutes == 1 ? "1 minute" : $"{minutes} minutes";
        }
        var seconds = Math.Max(1, (long)Math.Ceiling(wait.TotalSeconds));
        return seconds == 1 ? "1 second" : $"{seconds} seconds";
    }
}

/// <summary>
/// Failed logins counted per remote address and, optionally, per user name; shared by every login of a server. An
/// attempt is admitted (<see cref="EnterAsync"/>) before its credentials are checked and holds a share of its
/// address's (and user's) failure budget until it ends, so guesses sent in parallel count while they are in flight:
/// no more than <see cref="LoginThrottleOptions.MaxFailures"/> are ever checked within a window. Attempts beyond the
/// budget wait for those in flight; once the budget is spent by failures the address (user) is locked out for
/// <see cref="LoginThrottleOptions.Lockout"/>, and every attempt is refused, whatever its credentials.
/// A success clears the failures of its own user at its own address only: a valid account cannot launder guesses at
/// another user from the same address.
/// </summary>
/// <remarks>
/// IPv6 addresses count per /64 (one host can take any address of its /64); IPv4-mapped IPv6 addresses count as
/// IPv4. Memory is bounded: fewer than <see cref="LoginThrottleOptions.MaxFailures"/> timestamps per address and user,
/// idle entries are swept as the tables grow, and beyond <see cref="MaxTracked"/> entries a new address or user is
/// not tracked (it still gets the base delay).
/// </remarks>
public sealed class LoginThrottle
{
    /// <summary>Addresses (and users) tracked at most at once.</summary>
    public const int MaxTracked = 65_536;

    private const int FirstSweepAt = 1024;

    private static readonly LoginThrottleOptionsValidator OptionsValidator = new();

    private readonly LoginThrottleOptions _options;
    private readonly TimeProvider _clock;
    private readonly Dictionary<IPAddress, Entry> _addresses = [];
    private readonly Dictionary<string, Entry> _users = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private int _sweepAt = FirstSweepAt;

    /// <summary>Creates a throttle.</summary>
    public LoginThrottle(LoginThrottleOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var result = OptionsValidator.Validate(options);
        if (!result.IsValid)
            throw new ArgumentException("invalid login throttle options: " + string.Join("; ", result.Errors.Select(e => e.ErrorMessage)), nameof(options));
        _options = options;
        _clock = options.TimeProvider;
    }

    /// <summary>Addresses and users tracked now (failures in the window, locked out, or attempts in flight).</summary>
    public int Tracked
    {
        get
        {
            lock (_lock)
                return _addresses.Count + _users.Count;
        }
    }

    /// <summary>
    /// Admits a login attempt of <paramref name="user"/> from <paramref name="address"/> (null: not tracked by
    /// address), waiting while the attempts in flight hold the rest of the budget. Dispose the result when the attempt
    /// ends; report its outcome first with <see cref="LoginAttempt.Succeeded"/> or <see cref="LoginAttempt.Failed"/>
    /// (an attempt disposed without either, say the check could not be made, counts as nothing).
    /// </summary>
    public async ValueTask<LoginAttempt> EnterAsync(IPAddress? address, string user, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(user);
        var addressKey = address is null ? null : KeyOf(address);
        while (true)
        {
            Task wait;
            lock (_lock)
            {
                var now = _clock.GetUtcNow();
                // Swept before the lookups, never between them: an entry just found must stay in its table.
                if (_addresses.Count + _users.Count >= _sweepAt)
                    Sweep(now);
                var byAddress = addressKey is null ? null : Find(_addresses, addressKey);
                var byUser = _options.PerUser ? Find(_users, user) : null;
                Entry? blocker = null;
                foreach (var (entry, scope) in new[] { (byAddress, LoginScope.Address), (byUser, LoginScope.User) })
                {
                    if (entry is null)
                        continue;
                    entry.Forget(now - _options.Window);
                    if (entry.LockedUntil > now)
                        return new LoginAttempt(this, null, null, user, addressKey, new LoginRefusal(scope, entry.LockedUntil - now));
                    if (entry.Failures + entry.InFlight >= _options.MaxFailures
                        || (scope == LoginScope.Address && entry.InFlight >= _options.MaxConcurrentPerAddress))
                        blocker ??= entry;
                }
                if (blocker is null)
                {
                    if (byAddress is not null)
                        byAddress.InFlight++;
                    if (byUser is not null)
                        byUser.InFlight++;
                    return new LoginAttempt(this, byAddress, byUser, user, addressKey, null);
                }
                wait = (blocker.Changed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }
            await wait.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The address failures count against: IPv4 as it is, IPv6 by its /64.</summary>
    public static IPAddress KeyOf(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
            return address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            return address;
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes);
    }

    private Entry? Find<TKey>(Dictionary<TKey, Entry> table, TKey key)
        where TKey : notnull
    {
        if (table.TryGetValue(key, out var entry))
            return entry;
        if (_addresses.Count + _users.Count >= MaxTracked)
            return null;
        entry = new Entry();
        table[key] = entry;
        return entry;
    }

    private void End(LoginAttempt attempt, bool? succeeded, out LoginPenalty penalty)
    {
        penalty = new LoginPenalty(_options.FailureDelay, 0, 0, TimeSpan.Zero, false, false);
        lock (_lock)
        {
            var now = _clock.GetUtcNow();
            var addressBucket = attempt.AddressKey?.ToString() ?? "-";
            var (addressFailures, addressLocked) = EndIn(attempt.ByAddress, attempt.User, succeeded, now);
            var (userFailures, userLocked) = EndIn(attempt.ByUser, addressBucket, succeeded, now);
            if (succeeded == false)
            {
                var delay = DelayFor(Math.Max(Math.Max(addressFailures, userFailures), 1));
                penalty = new LoginPenalty(delay, addressFailures, userFailures,
                    addressLocked || userLocked ? _options.Lockout : TimeSpan.Zero, addressLocked, userLocked);
            }
        }
    }

    /// <summary>Ends an attempt in one entry; for a failure returns the failures in the window and whether it locked the entry.</summary>
    private (int Failures, bool Locked) EndIn(Entry? entry, string bucket, bool? succeeded, DateTimeOffset now)
    {
        if (entry is null)
            return (0, false);
        entry.InFlight--;
        var result = (0, false);
        switch (succeeded)
        {
            case true:
                entry.Clear(bucket);
                break;
            case false:
                entry.Forget(now - _options.Window);
                entry.Add(bucket, now);
                result = (entry.Failures, false);
                if (entry.Failures >= _options.MaxFailures)
                {
                    // The lockout is the penalty now; afterwards the address (user) starts afresh.
                    entry.LockedUntil = now + _options.Lockout;
                    entry.ClearAll();
                    result = (result.Item1, true);
                }
                break;
        }
        if (entry.Changed is { } changed)
        {
            entry.Changed = null;
            changed.TrySetResult();
        }
        return result;
    }

    private TimeSpan DelayFor(int failures)
    {
        var delay = _options.FailureDelay;
        for (var i = 1; i < failures && delay < _options.MaxFailureDelay; i++)
            delay += delay;
        return delay < _options.MaxFailureDelay ? delay : _options.MaxFailureDelay;
    }

    private void Sweep(DateTimeOffset now)
    {
        SweepTable(_addresses, now);
        SweepTable(_users, now);
        _sweepAt = Math.Max(FirstSweepAt, (_addresses.Count + _users.Count) * 2);
    }

    private void SweepTable<TKey>(Dictionary<TKey, Entry> table, DateTimeOffset now)
        where TKey : notnull
    {
        var horizon = now - _options.Window;
        foreach (var (key, entry) in table)
        {
            entry.Forget(horizon);
            if (entry.Failures == 0 && entry.LockedUntil <= now && entry.InFlight == 0 && entry.Changed is null)
                table.Remove(key);
        }
    }

    /// <summary>One login attempt admitted by <see cref="EnterAsync"/>, or refused (<see cref="Refusal"/>).</summary>
    public sealed class LoginAttempt : IDisposable
    {
        private readonly LoginThrottle _throttle;
        private int _ended;

        internal LoginAttempt(LoginThrottle throttle, Entry? byAddress, Entry? byUser, string user, IPAddress? addressKey, LoginRefusal? refusal)
        {
            _throttle = throttle;
            ByAddress = byAddress;
            ByUser = byUser;
            User = user;
            AddressKey = addressKey;
            Refusal = refusal;
            if (refusal is not null)
                _ended = 1;
        }

        /// <summary>Set when the attempt is refused outright: its address or user is locked out. Check nothing then.</summary>
        public LoginRefusal? Refusal { get; }

        internal Entry? ByAddress { get; }
        internal Entry? ByUser { get; }
        internal string User { get; }
        internal IPAddress? AddressKey { get; }

        /// <summary>The credentials were good: the failures of this user at this address are forgotten.</summary>
        public void Succeeded()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
                _throttle.End(this, true, out _);
        }

        /// <summary>The credentials were wrong: counted, and what it costs returned.</summary>
        public LoginPenalty Failed()
        {
            if (Interlocked.Exchange(ref _ended, 1) != 0)
                throw new InvalidOperationException("the attempt has already ended");
            _throttle.End(this, false, out var penalty);
            return penalty;
        }

        /// <summary>Ends the attempt; one neither succeeded nor failed counts as nothing.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
                _throttle.End(this, null, out _);
        }
    }

    internal sealed class Entry
    {
        private readonly Dictionary<string, Queue<DateTimeOffset>> _buckets = new(StringComparer.Ordinal);

        /// <summary>Failures in all buckets.</summary>
        public int Failures { get; private set; }

        public int InFlight { get; set; }

        public DateTimeOffset LockedUntil { get; set; }

        /// <summary>Completed when an attempt in flight ends (attempts waiting for budget look again).</summary>
        public TaskCompletionSource? Changed { get; set; }

        public void Add(string bucket, DateTimeOffset at)
        {
            if (!_buckets.TryGetValue(bucket, out var failures))
                _buckets[bucket] = failures = new Queue<DateTimeOffset>();
            failures.Enqueue(at);
            Failures++;
        }

        public void Clear(string bucket)
        {
            if (_buckets.Remove(bucket, out var failures))
                Failures -= failures.Count;
        }

        public void ClearAll()
        {
            _buckets.Clear();
            Failures = 0;
        }

        public void Forget(DateTimeOffset before)
        {
            if (Failures == 0)
                return;
            foreach (var (bucket, failures) in _buckets)
            {
                while (failures.TryPeek(out var oldest) && oldest <= before)
                {
                    failures.Dequeue();
                    Failures--;
                }
                if (failures.Count == 0)
                    _buckets.Remove(bucket);
            }
        }
    }
}
