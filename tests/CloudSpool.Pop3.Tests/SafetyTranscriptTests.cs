using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>Hostile or broken input: over-long lines, bad commands, idle clients, garbage.</summary>
public sealed class SafetyTranscriptTests
{
    [Fact]
    public async Task Line_of_255_octets_is_accepted_and_256_is_refused()
    {
        await using var h = await SessionHarness.StartAsync();
        var user = "USER " + new string('u', 255 - 5 - 2);
        await h.ExpectAsync(user, "+OK send PASS");
        await h.ExpectAsync(user + "u", "-ERR line too long (RFC 2449: 255 octets at most)");
        await h.ExpectAsync("PASS secret", "-ERR PASS is valid only right after USER");
    }

    [Fact]
    public async Task Over_long_line_is_discarded_to_its_end_and_the_session_goes_on()
    {
        await using var h = await SessionHarness.StartAsync();
        // A megabyte without a line end, in pieces, then the line end and a good command in the same write.
        var chunk = new string('A', 64 * 1024);
        for (var i = 0; i < 16; i++)
            await h.Client.SendAsync(chunk);
        await h.Client.SendAsync("USER evil\r\nUSER alice\r\n");
        Assert.Equal("-ERR line too long (RFC 2449: 255 octets at most)", await h.Client.ReadLineAsync());
        Assert.Equal("+OK send PASS", await h.Client.ReadLineAsync());
        await h.ExpectAsync("PASS secret", "+OK logged in; maildrop has 3 messages (82 octets)");
    }

    [Fact]
    public async Task Too_many_bad_commands_end_the_session()
    {
        await using var h = await SessionHarness.StartAsync(o => o.MaxBadCommands = 4);
        await h.ExpectAsync("FOO", "-ERR unknown command");
        await h.ExpectAsync("STAT", "-ERR STAT is valid only after login");
        await h.ExpectAsync(new string('x', 300), "-ERR line too long (RFC 2449: 255 octets at most)");
        await h.ExpectAsync("BAR", "-ERR too many bad commands; closing the connection");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
    }

    [Fact]
    public async Task Default_limit_is_ten_bad_commands_and_failed_logins_count()
    {
        await using var h = await SessionHarness.StartAsync();
        for (var i = 0; i < 4; i++)
        {
            await h.ExpectAsync("USER alice", "+OK send PASS");
            await h.ExpectAsync("PASS guess" + i, "-ERR [AUTH] invalid user name or password");
        }
        for (var i = 0; i < 5; i++)
            await h.ExpectAsync("NOPE", "-ERR unknown command");
        await h.ExpectAsync("NOPE", "-ERR too many bad commands; closing the connection");
        await h.Client.AssertClosedAsync();
    }

    [Fact]
    public async Task Too_many_bad_commands_after_login_commit_nothing()
    {
        await using var h = await SessionHarness.StartAsync(o => o.MaxBadCommands = 2);
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("USER x", "-ERR USER is valid only before login");
        await h.ExpectAsync("USER x", "-ERR too many bad commands; closing the connection");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        Assert.Empty(h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
    }

    [Fact]
    public async Task Idle_client_before_login_is_disconnected_without_a_response()
    {
        await using var h = await SessionHarness.StartAsync(o => o.IdleTimeoutBeforeLogin = TimeSpan.FromMilliseconds(300));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await h.Client.AssertClosedAsync();
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), "closed after " + clock.Elapsed);
        await h.WaitForEndAsync();
    }

    [Fact]
    public async Task Idle_client_after_login_is_disconnected_and_nothing_is_committed()
    {
        await using var h = await SessionHarness.StartAsync(o =>
        {
            o.IdleTimeoutBeforeLogin = TimeSpan.FromSeconds(30);
            o.IdleTimeoutAfterLogin = TimeSpan.FromMilliseconds(300);
        });
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        Assert.Empty(h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
    }

    [Fact]
    public async Task Slow_but_active_client_is_not_timed_out()
    {
        // 6 x 600 ms of activity outlasts the 3 s idle timeout; each gap leaves a wide margin on a loaded machine.
        await using var h = await SessionHarness.StartAsync(o => o.IdleTimeoutBeforeLogin = TimeSpan.FromSeconds(3));
        for (var i = 0; i < 6; i++)
        {
            await Task.Delay(600);
            await h.ExpectAsync("CAPA", "+OK capability list follows");
            await h.Client.ReadLinesAsync();
        }
    }

    [Fact]
    public async Task Slowloris_client_trickling_bytes_without_ending_a_line_is_disconnected_at_the_idle_timeout()
    {
        // One byte every 200 ms is activity, but no command ever completes: the idle timeout runs per line.
        await using var h = await SessionHarness.StartAsync(o => o.IdleTimeoutBeforeLogin = TimeSpan.FromSeconds(1));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var closed = h.Client.ReadToEndAsync();
        var sent = 0;
        while (!closed.IsCompleted && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            try
            {
                await h.Client.SendAsync("X");
                sent++;
            }
            catch (IOException)
            {
                break;
            }
            await Task.Delay(200);
        }
        Assert.Empty(await closed);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), "closed after " + clock.Elapsed);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "still open after " + clock.Elapsed + " and " + sent + " bytes");
        await h.WaitForEndAsync();
    }

    [Fact]
    public async Task A_client_that_never_logs_in_is_ended_at_the_login_timeout_however_busy_it_keeps()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var h = await SessionHarness.StartAsync(o => o.TimeProvider = clock);
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        await h.Client.ReadLinesAsync();
        clock.Advance(TimeSpan.FromMinutes(2));
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS wrong", "-ERR [AUTH] invalid user name or password");
        clock.Advance(TimeSpan.FromMinutes(1));
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        await h.Client.ReadLinesAsync();
        Assert.Equal("-ERR [SYS/TEMP] no login within 3 minutes; closing the connection", await h.Client.ReadLineAsync());
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
    }

    [Fact]
    public async Task The_login_timeout_no_longer_applies_once_logged_in()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var h = await SessionHarness.StartAsync(o => o.TimeProvider = clock);
        clock.Advance(TimeSpan.FromMinutes(2));
        await h.LoginAsync();
        clock.Advance(TimeSpan.FromMinutes(30));
        await h.ExpectAsync("NOOP", "+OK");
        await h.ExpectAsync("STAT", "+OK 3 82");
    }

    [Fact]
    public async Task Random_garbage_never_throws_out_of_the_session()
    {
        var random = new Random(2449);
        for (var round = 0; round < 30; round++)
        {
            await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
            var garbage = new byte[random.Next(1, 4000)];
            random.NextBytes(garbage);
            // Sprinkle line ends and real verbs so that parsing paths are exercised, not just "too long".
            for (var i = 0; i < garbage.Length; i += random.Next(1, 60))
                garbage[i] = (byte)'\n';
            await h.Client.SendAsync(round % 3 == 0 ? [.. "USER alice\r\nPASS secret\r\n"u8, .. garbage] : garbage);
            await h.Client.DisposeAsync();
            await h.WaitForEndAsync(); // RunSessionAsync never throws; a hang would time out here
            Assert.True(h.Session.IsCompletedSuccessfully);
            Assert.DoesNotContain(h.Logs.Entries, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Error);
        }
    }
}
