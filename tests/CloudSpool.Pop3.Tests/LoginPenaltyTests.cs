using System.Net;
using CloudSpool.Pop3.Engine;
using CloudSpool.Pop3.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace CloudSpool.Pop3.Tests;

/// <summary>
/// Failed logins are delayed and penalised per remote address (growing delay, lockout after too many, forgotten
/// after the window, cleared by a success), on the server's <see cref="TimeProvider"/>: no test sleeps.
/// </summary>
public sealed class LoginPenaltyTests
{
    private static readonly IPEndPoint Guesser = new(IPAddress.Loopback, 40001);
    private static readonly IPEndPoint Neighbour = new(IPAddress.Parse("127.0.0.2"), 40002);

    private static Pop3ServerOptions Options(FakeTimeProvider clock, int maxFailures = 10) => new()
    {
        FailedLoginDelay = TimeSpan.FromSeconds(2),
        MaxFailedLoginDelay = TimeSpan.FromSeconds(30),
        FailedLoginWindow = TimeSpan.FromMinutes(15),
        MaxFailedLogins = maxFailures,
        FailedLoginLockout = TimeSpan.FromMinutes(15),
        TimeProvider = clock,
    };

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

    [Fact]
    public void Delay_doubles_with_each_recent_failure_up_to_the_cap_and_old_failures_are_forgotten()
    {
        var clock = new FakeTimeProvider();
        var penalties = new Pop3LoginPenalties(Options(clock));
        var delays = Enumerable.Range(0, 6).Select(_ =>
        {
            clock.Advance(TimeSpan.FromSeconds(40));
            return penalties.RecordFailure(Guesser).Delay.TotalSeconds;
        }).ToArray();
        Assert.Equal([2, 4, 8, 16, 30, 30], delays);

        // Another address starts at the base delay.
        Assert.Equal(TimeSpan.FromSeconds(2), penalties.RecordFailure(Neighbour).Delay);

        // Failures older than the window no longer count: the first ones drop off one by one.
        // Failures at 40 s, 80 s, ... 240 s; at 980 s those at 40 s and 80 s are 15 minutes old.
        clock.Advance(TimeSpan.FromSeconds(980 - 240));
        Assert.Equal(5, penalties.RecordFailure(Guesser).RecentFailures);
        clock.Advance(TimeSpan.FromMinutes(16));
        var fresh = penalties.RecordFailure(Guesser);
        Assert.Equal((1, TimeSpan.FromSeconds(2)), (fresh.RecentFailures, fresh.Delay));
        Assert.Null(penalties.LockoutLeft(Guesser));
    }

    [Fact]
    public void Too_many_failures_lock_the_address_out_for_a_while_and_a_success_clears_it()
    {
        var clock = new FakeTimeProvider();
        var penalties = new Pop3LoginPenalties(Options(clock, maxFailures: 3));
        Assert.Equal(TimeSpan.Zero, penalties.RecordFailure(Guesser).Lockout);
        Assert.Equal(TimeSpan.Zero, penalties.RecordFailure(Guesser).Lockout);
        Assert.Equal(TimeSpan.FromMinutes(15), penalties.RecordFailure(Guesser).Lockout);
        clock.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(TimeSpan.FromMinutes(5), penalties.LockoutLeft(Guesser));
        Assert.Null(penalties.LockoutLeft(Neighbour));
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Null(penalties.LockoutLeft(Guesser));
        // After the lockout the address starts afresh.
        Assert.Equal(1, penalties.RecordFailure(Guesser).RecentFailures);

        penalties.RecordFailure(Neighbour);
        penalties.RecordFailure(Neighbour);
        penalties.RecordSuccess(Neighbour);
        var afterSuccess = penalties.RecordFailure(Neighbour);
        Assert.Equal((1, TimeSpan.Zero), (afterSuccess.RecentFailures, afterSuccess.Lockout));
    }

    [Fact]
    public void Ipv6_addresses_count_per_64_and_ipv4_mapped_ones_as_ipv4()
    {
        var clock = new FakeTimeProvider();
        var penalties = new Pop3LoginPenalties(Options(clock));
        penalties.RecordFailure(new IPEndPoint(IPAddress.Parse("2001:db8:1:2::1"), 1));
        Assert.Equal(2, penalties.RecordFailure(new IPEndPoint(IPAddress.Parse("2001:db8:1:2:ffff::9"), 2)).RecentFailures);
        Assert.Equal(1, penalties.RecordFailure(new IPEndPoint(IPAddress.Parse("2001:db8:1:3::1"), 3)).RecentFailures);

        penalties.RecordFailure(new IPEndPoint(IPAddress.Parse("192.0.2.1"), 4));
        Assert.Equal(2, penalties.RecordFailure(new IPEndPoint(IPAddress.Parse("::ffff:192.0.2.1"), 5)).RecentFailures);
    }

    [Fact]
    public void Addresses_whose_failures_are_forgotten_are_swept_so_memory_stays_bounded()
    {
        var clock = new FakeTimeProvider();
        var penalties = new Pop3LoginPenalties(Options(clock));
        for (var i = 0; i < 3000; i++)
            penalties.RecordFailure(new IPEndPoint(new IPAddress(0x0A000000u + (uint)i), 1));
        Assert.Equal(3000, penalties.TrackedAddresses);
        clock.Advance(TimeSpan.FromMinutes(16));
        for (var i = 0; i < 3000; i++)
            penalties.RecordFailure(new IPEndPoint(new IPAddress(0x0B000000u + (uint)i), 1));
        Assert.True(penalties.TrackedAddresses <= 3000 + 1, "tracked " + penalties.TrackedAddresses);
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
