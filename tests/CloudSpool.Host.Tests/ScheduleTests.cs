using System.Text.Json;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Host.Tests;

/// <summary>Schedules edited while everything runs (`cloudspool schedule ...`), against real Azurite and Dovecot.</summary>
public sealed class ScheduleTests : DovecotAndSpoolTest
{
    private async Task AddAccountAsync(Dictionary<string, string> env, string name, string user, params string[] extra)
    {
        var result = await CliProcess.RunAsync(env,
        [
            "account", "add", name, "--host", Dovecot.Host, "--port", Dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--tls", "none", "--user", user, "--password-ref", "env:CLOUDSPOOL_SECRET_SCHED_PW", "--mailbox", "box", .. extra,
        ]);
        Assert.True(result.ExitCode == 0, result.Stderr);
    }

    private static async Task<JsonElement> ListAsync(Dictionary<string, string> env, string job)
    {
        var list = await CliProcess.RunAsync(env, "schedule", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        using var doc = JsonDocument.Parse(list.Stdout);
        return doc.RootElement.EnumerateArray().Single(j => j.GetProperty("job").GetString() == job).Clone();
    }

    [Fact]
    public async Task Schedule_set_validates_and_list_shows_the_schedule_in_effect()
    {
        Dovecot.AddUser("edit", "pw");
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_SCHED_PW", "pw"));
        await AddAccountAsync(env, "edit", "edit");

        var initial = await ListAsync(env, "pull:edit");
        Assert.Equal(("0 */5 * * * ?", "UTC", "default"), (initial.GetProperty("cron").GetString(), initial.GetProperty("timeZone").GetString(), initial.GetProperty("source").GetString()));
        Assert.Equal(3, initial.GetProperty("nextFires").GetArrayLength());

        var badCron = await CliProcess.RunAsync(env, "schedule", "set", "pull:edit", "every two minutes");
        Assert.Equal(2, badCron.ExitCode);
        Assert.Contains("not a Quartz cron expression", badCron.Stderr);
        Assert.Contains("nothing changed", badCron.Stderr);
        var badZone = await CliProcess.RunAsync(env, "schedule", "set", "pull:edit", "0 */2 * * * ?", "--tz", "Mars/Olympus_Mons");
        Assert.Equal(2, badZone.ExitCode);
        Assert.Contains("not a known time zone", badZone.Stderr);
        var noJob = await CliProcess.RunAsync(env, "schedule", "set", "pull:nobody", "0 */2 * * * ?");
        Assert.Equal(2, noJob.ExitCode);
        Assert.Equal("default", (await ListAsync(env, "pull:edit")).GetProperty("source").GetString());

        var set = await CliProcess.RunAsync(env, "schedule", "set", "pull:edit", "0 */2 * * * ?", "--tz", "Asia/Tokyo");
        Assert.True(set.ExitCode == 0, set.Stderr);
        var edited = await ListAsync(env, "pull:edit");
        Assert.Equal(("0 */2 * * * ?", "Asia/Tokyo", "edited"), (edited.GetProperty("cron").GetString(), edited.GetProperty("timeZone").GetString(), edited.GetProperty("source").GetString()));
        var fires = edited.GetProperty("nextFires").EnumerateArray().Select(f => f.GetDateTimeOffset()).ToList();
        Assert.All(fires, f => Assert.Equal(TimeSpan.FromHours(9), f.Offset));
        Assert.Equal([TimeSpan.FromMinutes(2), TimeSpan.FromMinutes(2)], fires.Zip(fires.Skip(1), (a, b) => b - a));

        await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "edit");
        Assert.Equal("Succeeded", (await ListAsync(env, "pull:edit")).GetProperty("lastOutcome").GetString());

        var reset = await CliProcess.RunAsync(env, "schedule", "reset", "pull:edit");
        Assert.True(reset.ExitCode == 0, reset.Stderr);
        Assert.Contains("edit removed", reset.Stdout);
        Assert.Equal("default", (await ListAsync(env, "pull:edit")).GetProperty("source").GetString());
    }

    [Fact]
    public async Task A_job_with_no_run_since_a_fire_its_schedule_gave_is_overdue_in_schedule_list_and_status()
    {
        var env = Spool.CliEnvironment(("CLOUDSPOOL__Health__JobOverdueAfter", "00:10:00"));
        Assert.Equal("never-run", (await ListAsync(env, "health")).GetProperty("state").GetString());

        // The health job (every five minutes) last ran two hours ago: its trigger stopped firing.
        var twoHoursAgo = DateTimeOffset.UtcNow.AddHours(-2);
        await Spool.Runtime.JobRuns.AppendAsync(new Core.Retention.JobRunRecord("health", twoHoursAgo, twoHoursAgo.AddSeconds(2),
            Core.Scheduling.RunOutcome.Succeeded, "0 accounts", null), CancellationToken.None);
        var overdue = await ListAsync(env, "health");
        Assert.Equal("overdue", overdue.GetProperty("state").GetString());
        Assert.Contains("no run recorded since", overdue.GetProperty("stateReason").GetString());
        Assert.True(overdue.GetProperty("dueSince").GetDateTimeOffset() < DateTimeOffset.UtcNow.AddMinutes(-100));
        var status = await CliProcess.RunAsync(env, "status");
        Assert.True(status.ExitCode == 0, status.Stderr);
        Assert.Contains("job health: OVERDUE  should have run at", status.Stdout);

        // A run now (as a fire would record) makes it healthy again.
        var run = await CliProcess.RunAsync(env, "job", "run", "health");
        Assert.True(run.ExitCode == 0, run.Stderr);
        Assert.Equal("ok", (await ListAsync(env, "health")).GetProperty("state").GetString());
        Assert.Contains("job health: OK", (await CliProcess.RunAsync(env, "status")).Stdout);
    }

    [Fact]
    public async Task Every_running_worker_applies_a_schedule_edit_within_seconds()
    {
        Dovecot.AddUser("later", "pw");
        Dovecot.DeliverRaw("later", TestMail.Create("waiting for the edit"));
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_SCHED_PW", "pw"), ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"));
        await AddAccountAsync(env, "later", "later", "--schedule", "0 0 0 1 1 ? 2099");
        using var first = CliProcess.Start(env, "worker");
        using var second = CliProcess.Start(env, "worker");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(first.Stderr.Contains("pull:later: scheduled", StringComparison.Ordinal) && second.Stderr.Contains("pull:later: scheduled", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            await Task.Delay(200);
        Assert.Empty(await Spool.ListAsync("box"));

        var set = await CliProcess.RunAsync(env, "schedule", "set", "pull:later", "*/2 * * * * ?");
        Assert.True(set.ExitCode == 0, set.Stderr);
        var edited = DateTime.UtcNow;

        deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await Spool.ListAsync("box")).Count == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(250);
        Assert.True(DateTime.UtcNow - edited < TimeSpan.FromSeconds(10), "the edit took effect within 10 seconds");
        Assert.Equal("waiting for the edit", Assert.Single(await Spool.ListAsync("box")).Summary.Subject);
        while (!(first.Stderr.Contains("schedule changed", StringComparison.Ordinal) && second.Stderr.Contains("schedule changed", StringComparison.Ordinal)) && DateTime.UtcNow < deadline)
            await Task.Delay(200);
        Assert.Contains("pull:later: schedule changed from \"0 0 0 1 1 ? 2099\" (UTC) to \"*/2 * * * * ?\"", first.Stderr);
        Assert.Contains("pull:later: schedule changed from \"0 0 0 1 1 ? 2099\" (UTC) to \"*/2 * * * * ?\"", second.Stderr);

        await first.TerminateAsync();
        await second.TerminateAsync();
        Assert.Equal(0, await first.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, await second.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Two_workers_on_one_schedule_never_pull_an_account_at_the_same_time()
    {
        const int count = 300;
        Dovecot.AddUser("busy", "pw");
        for (var i = 0; i < count; i++)
            Dovecot.DeliverRaw("busy", TestMail.Create("busy " + i, bodyBytes: 100_000)); // 30 MB: a first run of seconds
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_SCHED_PW", "pw"), ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"));
        // Every second on both workers, so fires keep coming while the first (long) run still holds the account.
        await AddAccountAsync(env, "busy", "busy", "--schedule", "* * * * * ?");
        using var first = CliProcess.Start(env, "worker");
        using var second = CliProcess.Start(env, "worker");

        var deadline = DateTime.UtcNow.AddSeconds(90);
        List<CloudSpool.Core.Pull.PullRunRecord> runs;
        do
        {
            await Task.Delay(500);
            runs = [.. await Spool.Runtime.States.RecentRunsAsync("busy", 500, CancellationToken.None)];
        }
        // Until the workers have collided too: a run can end within the second both fired in (the pull got faster).
        while (!(runs.Sum(r => r.Stored) >= count && runs.Count(r => r.Outcome == CloudSpool.Core.Scheduling.RunOutcome.Succeeded) >= 3
                 && runs.Any(r => r.Outcome == CloudSpool.Core.Scheduling.RunOutcome.Skipped)) && DateTime.UtcNow < deadline);
        await first.TerminateAsync();
        await second.TerminateAsync();
        Assert.Equal(0, await first.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, await second.WaitAsync(TimeSpan.FromSeconds(30)));

        runs = [.. await Spool.Runtime.States.RecentRunsAsync("busy", 500, CancellationToken.None)];
        // Two runs at once would both fetch the unseen messages: one of them would find them held already.
        Assert.Equal(count, runs.Sum(r => r.Stored));
        Assert.Equal(0, runs.Sum(r => r.Duplicates));
        Assert.Equal(count, (await Spool.ListAsync("box")).Count);
        Assert.All(runs, r => Assert.NotEqual(CloudSpool.Core.Scheduling.RunOutcome.Failed, r.Outcome));
        // And the workers did collide: fires that found the account busy were skipped, and said why.
        Assert.Contains(runs, r => r.Outcome == CloudSpool.Core.Scheduling.RunOutcome.Skipped && r.SkipReason == "another worker is pulling this account");
        Assert.Contains("another worker is pulling this account", first.Stderr + second.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_host_that_slept_through_many_fires_runs_the_job_once_on_return()
    {
        Dovecot.AddUser("sleepy", "pw");
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_SCHED_PW", "pw"), ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"), ("CLOUDSPOOL__Scheduler__MisfireThreshold", "00:00:02"));
        await AddAccountAsync(env, "sleepy", "sleepy", "--schedule", "*/2 * * * * ?");
        using var worker = CliProcess.Start(env, "worker");
        async Task<List<DateTimeOffset>> StartsAsync() =>
            [.. (await Spool.Runtime.States.RecentRunsAsync("sleepy", 500, CancellationToken.None)).Select(r => r.Started).Order()];
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await StartsAsync()).Count < 2 && DateTime.UtcNow < deadline)
            await Task.Delay(250);
        Assert.True((await StartsAsync()).Count >= 2, worker.Stderr);

        // The host sleeps through six fires.
        await worker.SignalAsync("STOP");
        await Task.Delay(TimeSpan.FromSeconds(12));
        var resumed = DateTimeOffset.UtcNow;
        await worker.SignalAsync("CONT");
        await Task.Delay(TimeSpan.FromSeconds(5));
        await worker.TerminateAsync();
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(30)));

        // On return: one run at once, then the schedule as usual, never a burst of the missed ones.
        var afterwards = (await StartsAsync()).Where(t => t >= resumed).ToList();
        Assert.NotEmpty(afterwards);
        // Before the schedule's next fire (even seconds) there may be the fire that was due as it woke and the one run
        // for all it missed; a burst of the six missed ones would be more. (A window of fixed length after waking could
        // take in the next regular fire too, when waking came late in a two-second period.)
        var next = NextEvenSecond(afterwards[0]).AddMilliseconds(-50);
        var beforeNext = afterwards.Count(t => t < next);
        Assert.True(beforeNext <= 2, $"{beforeNext} runs between waking and the next fire ({next.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture)}): {string.Join(", ", afterwards.Select(t => t.ToString("HH:mm:ss.fff", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.InRange(afterwards.Count, 2, 5);
    }

    /// <summary>The first even second (UTC) after <paramref name="time"/>: when a "*/2 * * * * ?" schedule fires next.</summary>
    private static DateTimeOffset NextEvenSecond(DateTimeOffset time)
    {
        var whole = new DateTimeOffset(time.UtcTicks - time.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        return whole.AddSeconds(whole.Second % 2 == 0 ? 2 : 1);
    }
}
