using System.Net;
using static CloudSpool.Pop3.LoginThrottle;
using CloudSpool.Pop3.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace CloudSpool.Pop3.Tests;

/// <summary>
/// Failed logins are delayed and penalised per remote address (growing delay, lockout after too many, forgotten
/// after the window, a success clearing its own user's failures only, guesses in flight counted), on the server's
/// <see cref="TimeProvider"/>: no test sleeps for the clock.
/// </summary>
public sealed class LoginPenaltyTests
{
    private static readonly IPEndPoint Guesser = new(IPAddress.Loopback, 40001);
    private static readonly IPEndPoint Neighbour = new(IPAddress.Parse("127.0.0.2"), 40002);

    private static void NoDelays(Pop3ServerOptions options, FakeTimeProvider clock, int maxFailures)
    {
        options.TimeProvider = clock;
        options.FailedLoginDelay = TimeSpan.Zero;
        options.MaxFailedLogins = maxFailures;
    }

    private static async Task<string?> AskAsync(WireClient client, string command)
    {
        await client.SendAsync(command + "\r\n");
        return await client.ReadLineAsync();
    }

    private static async Task FailLoginAsync(WireClient client, string expected = "-ERR [AUTH] invalid user name or password")
    {
        Assert.Equal("+OK send PASS", await AskAsync(client, "USER alice"));
        Assert.Equal(expected, await AskAsync(client, "PASS wrong"));
    }

    /// <summary>A wrong password is answered exactly when <paramref name="delay"/> has passed on the fake clock.</summary>
    private static async Task ExpectDelayedFailureAsync(WireClient client, ObservedClock clock, TimeSpan delay)
    {
        Assert.Equal("+OK send PASS", await AskAsync(client, "USER alice"));
        await client.SendAsync("PASS wrong\r\n");
        var answer = client.ReadLineAsync();
        await clock.WaitForTimerAsync();
        clock.Advance(delay - TimeSpan.FromMilliseconds(1));
        await Task.Delay(200);
        Assert.False(answer.IsCompleted, "answered before " + delay);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal("-ERR [AUTH] invalid user name or password", await answer);
    }

    // ---- the tracker -------------------------------------------------------------------------------------

    private static LoginThrottle Throttle(FakeTimeProvider clock, int maxFailures = 10, bool perUser = false, int? concurrent = null) => new(new LoginThrottleOptions
    {
        FailureDelay = TimeSpan.FromSeconds(2),
        MaxFailureDelay = TimeSpan.FromSeconds(30),
        Window = TimeSpan.FromMinutes(15),
        MaxFailures = maxFailures,
        Lockout = TimeSpan.FromMinutes(15),
        PerUser = perUser,
        MaxConcurrentPerAddress = concurrent,
        TimeProvider = clock,
    });

    private static LoginAttempt Enter(LoginThrottle throttle, IPEndPoint remote, string user = "alice")
    {
        var entering = throttle.EnterAsync(remote.Address, user, CancellationToken.None);
        Assert.True(entering.IsCompleted, "the attempt had to wait");
        return entering.Result;
    }

    private static LoginPenalty Fail(LoginThrottle throttle, IPEndPoint remote, string user = "alice")
    {
        using var attempt = Enter(throttle, remote, user);
        Assert.Null(attempt.Refusal);
        return attempt.Failed();
    }

    private static void Succeed(LoginThrottle throttle, IPEndPoint remote, string user = "alice")
    {
        using var attempt = Enter(throttle, remote, user);
        Assert.Null(attempt.Refusal);
        attempt.Succeeded();
    }

    private static TimeSpan? LockoutLeft(LoginThrottle throttle, IPEndPoint remote, string user = "alice")
    {
        using var attempt = Enter(throttle, remote, user);
        return attempt.Refusal?.Left;
    }

    [Fact]
    public void Delay_doubles_with_each_recent_failure_up_to_the_cap_and_old_failures_are_forgotten()
    {
        var clock = new FakeTimeProvider();
        var penalties = Throttle(clock);
        var delays = Enumerable.Range(0, 6).Select(_ =>
        {
            clock.Advance(TimeSpan.FromSeconds(40));
            return Fail(penalties, Guesser).Delay.TotalSeconds;
        }).ToArray();
        Assert.Equal([2, 4, 8, 16, 30, 30], delays);

        // Another address starts at the base delay.
        Assert.Equal(TimeSpan.FromSeconds(2), Fail(penalties, Neighbour).Delay);

        // Failures older than the window no longer count: the first ones drop off one by one.
        // Failures at 40 s, 80 s, ... 240 s; at 980 s those at 40 s and 80 s are 15 minutes old.
        clock.Advance(TimeSpan.FromSeconds(980 - 240));
        Assert.Equal(5, Fail(penalties, Guesser).RecentFailures);
        clock.Advance(TimeSpan.FromMinutes(16));
        var fresh = Fail(penalties, Guesser);
        Assert.Equal((1, TimeSpan.FromSeconds(2)), (fresh.RecentFailures, fresh.Delay));
        Assert.Null(LockoutLeft(penalties, Guesser));
    }

    [Fact]
    public void Too_many_failures_lock_the_address_out_for_a_while_and_a_success_clears_its_own_user_only()
    {
        var clock = new FakeTimeProvider();
        var penalties = Throttle(clock, maxFailures: 3);
        Assert.Equal(TimeSpan.Zero, Fail(penalties, Guesser).Lockout);
        Assert.Equal(TimeSpan.Zero, Fail(penalties, Guesser).Lockout);
        var third = Fail(penalties, Guesser);
        Assert.Equal((TimeSpan.FromMinutes(15), true, false), (third.Lockout, third.AddressLocked, third.UserLocked));
        clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(TimeSpan.FromMinutes(5), LockoutLeft(penalties, Guesser));
        Assert.Equal(TimeSpan.FromMinutes(5), LockoutLeft(penalties, Guesser, "someone-else"));
        Assert.Null(LockoutLeft(penalties, Neighbour));
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(LockoutLeft(penalties, Guesser));
        // After the lockout the address starts afresh.
        Assert.Equal(1, Fail(penalties, Guesser).RecentFailures);

        // A success forgets its own user's failures at its address...
        Fail(penalties, Neighbour);
        Fail(penalties, Neighbour);
        Succeed(penalties, Neighbour);
        var afterSuccess = Fail(penalties, Neighbour);
        Assert.Equal((1, TimeSpan.Zero), (afterSuccess.RecentFailures, afterSuccess.Lockout));
        // ...never another user's: guesses at bob stay counted however often alice logs in between.
        Succeed(penalties, Neighbour, "alice");
        Assert.Equal(1, Fail(penalties, Neighbour, "bob").RecentFailures);
        Succeed(penalties, Neighbour, "alice");
        Assert.Equal(2, Fail(penalties, Neighbour, "bob").RecentFailures);
        Succeed(penalties, Neighbour, "alice");
        var bob = Fail(penalties, Neighbour, "bob");
        Assert.Equal((3, TimeSpan.FromMinutes(15)), (bob.RecentFailures, bob.Lockout));
    }

    [Fact]
    public void Ipv6_addresses_count_per_64_and_ipv4_mapped_ones_as_ipv4()
    {
        var clock = new FakeTimeProvider();
        var penalties = Throttle(clock);
        Fail(penalties, new IPEndPoint(IPAddress.Parse("2001:db8:1:2::1"), 1));
        Assert.Equal(2, Fail(penalties, new IPEndPoint(IPAddress.Parse("2001:db8:1:2:ffff::9"), 2)).RecentFailures);
        Assert.Equal(1, Fail(penalties, new IPEndPoint(IPAddress.Parse("2001:db8:1:3::1"), 3)).RecentFailures);

        Fail(penalties, new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4));
        Assert.Equal(2, Fail(penalties, new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.1"), 5)).RecentFailures);
    }

    [Fact]
    public void Addresses_whose_failures_are_forgotten_are_swept_so_memory_stays_bounded()
    {
        var clock = new FakeTimeProvider();
        var penalties = Throttle(clock);
        for (var i = 0; i < 3000; i++)
            Fail(penalties, new IPEndPoint(new IPAddress(0x0A000000u + (uint)i), 1));
        Assert.Equal(3000, penalties.Tracked);
        clock.Advance(TimeSpan.FromMinutes(16));
        for (var i = 0; i < 3000; i++)
            Fail(penalties, new IPEndPoint(new IPAddress(0x0B000000u + (uint)i), 1));
        Assert.True(penalties.Tracked <= 3000 + 1, "tracked " + penalties.Tracked);
    }

    [Fact]
    public async Task Attempts_in_flight_count_so_no_more_than_the_limit_are_ever_checked_and_the_rest_wait_then_are_refused()
    {
        var clock = new FakeTimeProvider();
        var penalties = Throttle(clock, maxFailures: 3);
        var admitted = Enumerable.Range(0, 3).Select(_ => Enter(penalties, Guesser)).ToList();
        // The budget is held by attempts still being checked: the next ones wait, from any user at that address.
        var waiting = Enumerable.Range(0, 5).Select(i => penalties.EnterAsync(Guesser.Address, "user" + i, CancellationToken.None).AsTask()).ToList();
        await Task.Delay(100);
        Assert.All(waiting, w => Assert.False(w.IsCompleted));

        // One ends without a verdict (the check could not be made): one waiting attempt takes its place.
        admitted[0].Dispose();
        var next = await Task.WhenAny(waiting).WaitAsync(WireClient.Patience);
        admitted[0] = await next;
        Assert.Null(admitted[0].Refusal);
        waiting.Remove(next);

        // All three fail: the address is locked, and every waiting attempt is refused without being checked.
        foreach (var attempt in admitted)
        {
            attempt.Failed();
            attempt.Dispose();
        }
        foreach (var refused in await Task.WhenAll(waiting).WaitAsync(WireClient.Patience))
            Assert.Equal(new LoginRefusal(LoginScope.Address, TimeSpan.FromMinutes(15)), refused.Refusal);
    }

    [Fact]
    public async Task Per_user_counting_locks_the_user_out_from_every_address_and_concurrency_per_address_is_bounded()
    {
        var clock = new FakeTimeProvider();
        var penalties = Throttle(clock, maxFailures: 4, perUser: true, concurrent: 1);
        using (var first = Enter(penalties, Guesser, "owner"))
        {
            // One check at a time per address: a second one from the same address waits, another address does not.
            var second = penalties.EnterAsync(Guesser.Address, "owner", CancellationToken.None).AsTask();
            await Task.Delay(100);
            Assert.False(second.IsCompleted);
            using (var elsewhere = Enter(penalties, Neighbour, "owner"))
                Assert.Equal(1, elsewhere.Failed().UserFailures);
            first.Failed();
            using var admitted = await second.WaitAsync(WireClient.Patience);
            Assert.Null(admitted.Refusal);
            Assert.Equal(3, admitted.Failed().UserFailures);
        }
        var fourth = Fail(penalties, new IPEndPoint(IPAddress.Parse("192.0.2.77"), 1), "owner");
        Assert.Equal((4, 1, true, false), (fourth.UserFailures, fourth.RecentFailures, fourth.UserLocked, fourth.AddressLocked));

        // Locked for every address, even one that never failed; another user is not.
        var fresh = new IPEndPoint(IPAddress.Parse("192.0.2.99"), 1);
        Assert.Equal(TimeSpan.FromMinutes(15), LockoutLeft(penalties, fresh, "owner"));
        using (var refused = Enter(penalties, fresh, "owner"))
            Assert.Equal(LoginScope.User, refused.Refusal!.Value.Scope);
        Assert.Null(LockoutLeft(penalties, fresh, "guest"));
    }

    // ---- sessions ----------------------------------------------------------------------------------------

    [Fact]
    public async Task A_failed_login_is_answered_only_when_its_delay_has_passed_on_the_servers_clock()
    {
        var clock = new ObservedClock();
        await using var h = await SessionHarness.StartAsync(
            o =>
            {
                o.TimeProvider = clock;
                o.FailedLoginDelay = TimeSpan.FromSeconds(2);
            },
            remote: Guesser);

        await ExpectDelayedFailureAsync(h.Client, clock, TimeSpan.FromSeconds(2));

        // The next failure from the same address waits twice as long, in another session too.
        await using var again = await h.ConnectAnotherAsync(Guesser);
        await ExpectDelayedFailureAsync(again, clock, TimeSpan.FromSeconds(4));
        Assert.Contains(h.Logs.Entries, e => e.Message.Contains("2 recent failures from this address; answered after 00:00:04", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_locked_out_address_is_refused_even_with_the_right_password_while_others_log_in()
    {
        var clock = new FakeTimeProvider();
        await using var h = await SessionHarness.StartAsync(o => NoDelays(o, clock, maxFailures: 3), remote: Guesser);
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS wrong1", "-ERR [AUTH] invalid user name or password");
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS wrong2", "-ERR [AUTH] invalid user name or password");
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS wrong3",
            "-ERR [AUTH] invalid user name or password; too many failed logins from your address, try again in 15 minutes");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        var attempts = h.Authenticator.Attempts.Count;

        await using (var locked = await h.ConnectAnotherAsync(Guesser))
        {
            clock.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(30));
            Assert.Equal("+OK send PASS", await AskAsync(locked, "USER alice"));
            Assert.Equal("-ERR [SYS/TEMP] too many failed logins from your address; try again in 14 minutes",
                await AskAsync(locked, "PASS " + SessionHarness.Password));
            await locked.AssertClosedAsync();
        }
        await using (var plain = await h.ConnectAnotherAsync(Guesser))
        {
            // AUTH PLAIN of alice/secret: the same refusal, before any credential is checked.
            Assert.Equal("-ERR [SYS/TEMP] too many failed logins from your address; try again in 14 minutes",
                await AskAsync(plain, "AUTH PLAIN AGFsaWNlAHNlY3JldA=="));
            await plain.AssertClosedAsync();
        }
        Assert.Equal(attempts, h.Authenticator.Attempts.Count);
        Assert.Contains(h.Logs.Entries, e => e.Message.Contains("refused for 00:15:00 after 3 failed logins", StringComparison.Ordinal));

        await using (var neighbour = await h.ConnectAnotherAsync(Neighbour))
        {
            Assert.Equal("+OK send PASS", await AskAsync(neighbour, "USER alice"));
            Assert.StartsWith("+OK logged in", await AskAsync(neighbour, "PASS " + SessionHarness.Password));
            Assert.StartsWith("+OK", await AskAsync(neighbour, "QUIT"));
        }

        clock.Advance(TimeSpan.FromMinutes(14));
        await using var later = await h.ConnectAnotherAsync(Guesser);
        Assert.Equal("+OK send PASS", await AskAsync(later, "USER alice"));
        Assert.StartsWith("+OK logged in", await AskAsync(later, "PASS " + SessionHarness.Password));
    }

    [Fact]
    public async Task A_successful_login_clears_the_failures_of_its_address()
    {
        var clock = new FakeTimeProvider();
        await using var h = await SessionHarness.StartAsync(o => NoDelays(o, clock, maxFailures: 3), remote: Guesser);
        await FailLoginAsync(h.Client);
        await FailLoginAsync(h.Client);
        await h.LoginAsync();
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (3 messages left)");
        await h.WaitForEndAsync();

        await using var next = await h.ConnectAnotherAsync(Guesser);
        await FailLoginAsync(next);
        await FailLoginAsync(next);
        Assert.Equal("+OK send PASS", await AskAsync(next, "USER alice"));
        Assert.StartsWith("+OK logged in", await AskAsync(next, "PASS " + SessionHarness.Password));
    }

    [Fact]
    public async Task A_valid_account_cannot_launder_guesses_at_another_user_the_address_limit_still_holds()
    {
        // Today's bypass: 9 guesses at bob, 1 good login of alice, again and again. Now the 10th guess locks the address.
        var clock = new FakeTimeProvider();
        var authenticator = new FakeAuthenticator((SessionHarness.User, SessionHarness.Password), ("bob", "bobs-secret"));
        await using var h = await SessionHarness.StartAsync(o => NoDelays(o, clock, maxFailures: 10), authenticator, remote: Guesser);
        await using var client = await h.ConnectAnotherAsync(Guesser);
        for (var i = 0; i < 9; i++)
        {
            Assert.Equal("+OK send PASS", await AskAsync(client, "USER bob"));
            Assert.Equal("-ERR [AUTH] invalid user name or password", await AskAsync(client, "PASS guess" + i));
        }
        await using (var alice = await h.ConnectAnotherAsync(Guesser))
        {
            Assert.Equal("+OK send PASS", await AskAsync(alice, "USER alice"));
            Assert.StartsWith("+OK logged in", await AskAsync(alice, "PASS " + SessionHarness.Password));
            Assert.StartsWith("+OK", await AskAsync(alice, "QUIT"));
        }
        await using var next = await h.ConnectAnotherAsync(Guesser);
        Assert.Equal("+OK send PASS", await AskAsync(next, "USER bob"));
        Assert.Equal("-ERR [AUTH] invalid user name or password; too many failed logins from your address, try again in 15 minutes",
            await AskAsync(next, "PASS guess9"));
        await using var locked = await h.ConnectAnotherAsync(Guesser);
        Assert.Equal("+OK send PASS", await AskAsync(locked, "USER alice"));
        Assert.Equal("-ERR [SYS/TEMP] too many failed logins from your address; try again in 15 minutes",
            await AskAsync(locked, "PASS " + SessionHarness.Password));
        Assert.Equal(9 + 1 + 1, h.Authenticator.Attempts.Count);
    }

    [Fact]
    public async Task Of_30_guesses_sent_at_once_no_more_than_the_limit_are_checked()
    {
        var clock = new FakeTimeProvider();
        var authenticator = new GatedAuthenticator();
        await using var h = await SessionHarness.StartAsync(o => NoDelays(o, clock, maxFailures: 10), remote: Guesser, port: authenticator);
        var clients = new List<WireClient>();
        for (var i = 0; i < 30; i++)
            clients.Add(await h.ConnectAnotherAsync(Guesser));
        foreach (var (client, i) in clients.Select((c, i) => (c, i)))
            await client.SendAsync($"USER bob\r\nPASS guess{i}\r\n");
        var answers = clients.Select(async c =>
        {
            Assert.Equal("+OK send PASS", await c.ReadLineAsync());
            return await c.ReadLineAsync();
        }).ToList();

        // Ten are being checked; the other twenty wait for them, unchecked.
        var deadline = DateTime.UtcNow + WireClient.Patience;
        while (authenticator.Checks < 10 && DateTime.UtcNow < deadline)
            await Task.Delay(20);
        await Task.Delay(300);
        Assert.Equal(10, authenticator.Checks);

        authenticator.Open();
        var replies = await Task.WhenAll(answers).WaitAsync(WireClient.Patience);
        Assert.Equal(10, authenticator.Checks);
        Assert.Equal(9, replies.Count(r => r == "-ERR [AUTH] invalid user name or password"));
        Assert.Equal(1, replies.Count(r => r == "-ERR [AUTH] invalid user name or password; too many failed logins from your address, try again in 15 minutes"));
        Assert.Equal(20, replies.Count(r => r == "-ERR [SYS/TEMP] too many failed logins from your address; try again in 15 minutes"));
        foreach (var client in clients)
            await client.DisposeAsync();
    }

    /// <summary>Refuses every password, but only once <see cref="Open"/> is called: guesses stay in flight until then.</summary>
    private sealed class GatedAuthenticator : IPop3Authenticator
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _checks;

        public int Checks => Volatile.Read(ref _checks);

        public void Open() => _gate.TrySetResult();

        public async ValueTask<Pop3AuthResult> AuthenticateAsync(Pop3Credentials credentials, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _checks);
            await _gate.Task.WaitAsync(cancellationToken);
            return Pop3AuthResult.Failed;
        }
    }

    /// <summary>A fake clock that tells when the server starts waiting on it (a failed-login delay).</summary>
    private sealed class ObservedClock : FakeTimeProvider
    {
        private readonly SemaphoreSlim _timers = new(0);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = base.CreateTimer(callback, state, dueTime, period);
            _timers.Release();
            return timer;
        }

        public async Task WaitForTimerAsync() => Assert.True(await _timers.WaitAsync(WireClient.Patience), "the server never waited on its clock");
    }
}
