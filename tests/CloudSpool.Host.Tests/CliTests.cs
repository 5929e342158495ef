using System.Text;
using System.Text.Json;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Host.Tests;

/// <summary>The `cloudspool` executable as users, scripts and cron hosts run it, against real Dovecot and Azurite.</summary>
public sealed class CliTests : DovecotAndSpoolTest
{
    private string[] AddArgs(string name, string user, string passwordVariable, string mailbox, params string[] extra) =>
    [
        "account", "add", name, "--protocol", "pop3", "--host", Dovecot.Host, "--port", Dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--tls", "none", "--user", user, "--password-ref", "env:" + passwordVariable, "--mailbox", mailbox, .. extra,
    ];

    [Fact]
    public async Task Account_commands_manage_test_and_pull_an_account()
    {
        Dovecot.AddUser("cli", "pw");
        Dovecot.DeliverRaw("cli", TestMail.Create("via the cli"));
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_CLI_PW", "pw"), ("CLOUDSPOOL_SECRET_CLI_BAD_PW", "nope"));

        var invalid = await CliProcess.RunAsync(env, "account", "add", "Bad Name", "--host", "exa mple", "--user", "u", "--password-ref", "hunter2", "--mailbox", "m", "--schedule", "often");
        Assert.Equal(2, invalid.ExitCode);
        Assert.Contains("Name:", invalid.Stderr);
        Assert.Contains("Host:", invalid.Stderr);
        Assert.Contains("PasswordRef:", invalid.Stderr);
        Assert.Contains("Schedule:", invalid.Stderr);
        Assert.Contains("was not added", invalid.Stderr);

        var added = await CliProcess.RunAsync(env, AddArgs("cli", "cli", "CLOUDSPOOL_SECRET_CLI_PW", "quinn", "--leave", "delete"));
        Assert.True(added.ExitCode == 0, added.Stderr);
        Assert.Contains("added cli", added.Stdout);
        Assert.Equal(1, (await CliProcess.RunAsync(env, AddArgs("cli", "cli", "CLOUDSPOOL_SECRET_CLI_PW", "quinn"))).ExitCode);
        // USER/PASS only: a failed SASL login costs 5 s per mechanism at Dovecot, and MailKit tries each.
        Assert.Equal(0, (await CliProcess.RunAsync(env, AddArgs("wrongpw", "cli", "CLOUDSPOOL_SECRET_CLI_BAD_PW", "quinn", "--auth", "USER"))).ExitCode);

        var list = await CliProcess.RunAsync(env, "account", "list", "--json");
        Assert.Equal(0, list.ExitCode);
        using (var doc = JsonDocument.Parse(list.Stdout))
            Assert.Equal(["cli", "wrongpw"], doc.RootElement.EnumerateArray().Select(a => a.GetProperty("name").GetString()).Order());

        var test = await CliProcess.RunAsync(env, "account", "test", "cli");
        Assert.True(test.ExitCode == 0, test.Stderr);
        Assert.Contains("1 messages", test.Stdout);
        Assert.Equal(1, await UpstreamProbe.CountAsync(Dovecot, "cli", "pw")); // test changes nothing, even with --leave delete

        var badTest = await CliProcess.RunAsync(env, "account", "test", "wrongpw");
        Assert.Equal(1, badTest.ExitCode);
        Assert.Contains("FAILED (Authentication)", badTest.Stderr);

        var pull = await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "cli");
        Assert.True(pull.ExitCode == 0, pull.Stdout + pull.Stderr);
        Assert.Contains("cli: ok: 1 new", pull.Stdout);
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "cli", "pw"));

        var unknown = await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "nope");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no account named 'nope'", unknown.Stderr);

        // All accounts: one fails, so the run fails (exit 1) and says which and why.
        var all = await CliProcess.RunAsync(env, "job", "run", "pull");
        Assert.True(all.ExitCode == 1, all.Stdout + all.Stderr);
        Assert.Contains("wrongpw: FAILED (Authentication)", all.Stdout);

        var status = await CliProcess.RunAsync(env, "status", "--json");
        Assert.Equal(0, status.ExitCode);
        using (var doc = JsonDocument.Parse(status.Stdout))
        {
            var states = doc.RootElement.EnumerateArray().ToDictionary(a => a.GetProperty("account").GetString()!, a => a.GetProperty("state").GetString());
            Assert.Equal("ok", states["cli"]);
            Assert.Equal("failing", states["wrongpw"]);
        }

        var messages = await CliProcess.RunAsync(env, "messages", "list", "--mailbox", "quinn");
        Assert.Contains("via the cli", messages.Stdout);

        Assert.Equal(0, (await CliProcess.RunAsync(env, "account", "remove", "wrongpw")).ExitCode);
        Assert.Equal(1, (await CliProcess.RunAsync(env, "account", "remove", "wrongpw")).ExitCode);
    }

    [Fact]
    public async Task An_invalid_configuration_is_refused_with_every_problem_and_its_path()
    {
        var config = Path.Combine(Spool.TempDirectory, "bad.json");
        await File.WriteAllTextAsync(config, """{ "Pull": { "DefaultSchedule": "sometimes", "LeaseDuration": "00:00:05", "Tmp": "x" } }""");

        var result = await CliProcess.RunAsync(Spool.CliEnvironment(), "job", "run", "pull", "--config", config);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Pull:Tmp: unknown setting", result.Stderr);
        Assert.Contains("nothing was started", result.Stderr);
    }

    [Fact]
    public async Task An_older_duration_variable_is_still_read_and_clashes_with_its_successor()
    {
        var export = await CliProcess.RunAsync(Spool.CliEnvironment(("CLOUDSPOOL__Health__StaleAfterHours", "48")), "schedule", "export", "--format", "json");
        Assert.True(export.ExitCode == 0, export.Stderr);
        using (var doc = JsonDocument.Parse(export.Stdout))
        {
            var settings = doc.RootElement.GetProperty("parameters").GetProperty("settings").GetProperty("value");
            Assert.Equal("2.00:00:00", settings.GetProperty("CLOUDSPOOL__Health__StaleAfter").GetString());
        }

        // The environment of these tests sets Pull:Timeout already.
        var clash = await CliProcess.RunAsync(Spool.CliEnvironment(("CLOUDSPOOL__Pull__TimeoutSeconds", "90")), "status");
        Assert.Equal(2, clash.ExitCode);
        Assert.Contains("Pull:TimeoutSeconds and Pull:Timeout are both set", clash.Stderr);
        Assert.Contains("nothing was started", clash.Stderr);
    }

    [Fact]
    public async Task Kill_9_at_any_moment_loses_nothing_and_the_next_run_duplicates_nothing()
    {
        const int count = 120;
        Dovecot.AddUser("crashy", "pw");
        for (var i = 0; i < count; i++)
            Dovecot.DeliverRaw("crashy", TestMail.Create($"crash {i:D3}", bodyBytes: 30_000));
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_CRASHY_PW", "pw"));
        Assert.Equal(0, (await CliProcess.RunAsync(env, AddArgs("crashy", "crashy", "CLOUDSPOOL_SECRET_CRASHY_PW", "rita", "--leave", "delete"))).ExitCode);

        // Kill the pull process at many different moments: during start-up, connect, fetch, store, DELE, QUIT.
        var kills = 0;
        foreach (var delayMs in new[] { 150, 700, 1100, 1300, 1500, 1700, 1900, 2200, 2600, 3000, 3500 })
        {
            using var pull = CliProcess.Start(env, "job", "run", "pull", "--account", "crashy");
            await Task.Delay(delayMs);
            if (pull.HasExited)
                break;
            pull.KillHard();
            await pull.WaitAsync(TimeSpan.FromSeconds(10));
            kills++;
            // A killed holder's lease expires by itself; break it at once to keep the test short.
            await Spool.BreakLeaseAsync(PullEngine.LeaseName("crashy"));

            // Invariant at every instant: each message is upstream or in the spool (or both), never neither.
            var spooled = (await Spool.ListAsync("rita")).Select(m => m.Summary.Subject).ToHashSet();
            var upstream = (await UpstreamProbe.FetchAllAsync(Dovecot, "crashy", "pw")).Values
                .Select(b => System.Text.Encoding.ASCII.GetString(b)).Select(t => t[(t.IndexOf("Subject: ", StringComparison.Ordinal) + 9)..t.IndexOf('\r', t.IndexOf("Subject: ", StringComparison.Ordinal))]).ToHashSet();
            for (var i = 0; i < count; i++)
                Assert.True(spooled.Contains($"crash {i:D3}") || upstream.Contains($"crash {i:D3}"), $"message {i} lost after kill at {delayMs} ms");
        }
        Assert.True(kills >= 3, $"only {kills} kills landed before the pull finished: make the mailbox larger");

        var final = await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "crashy");
        Assert.True(final.ExitCode == 0, final.Stdout + final.Stderr);

        var stored = await Spool.ListAsync("rita");
        Assert.Equal(count, stored.Count);
        Assert.Equal(count, stored.Select(m => m.Summary.Subject).Distinct().Count());
        Assert.Equal(count, stored.Select(m => m.DedupKey).Distinct().Count());
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "crashy", "pw"));
        foreach (var m in stored.Take(5))
            Assert.Equal(m.RawLength, (await Spool.ReadRawAsync(m)).Length);
    }

    [Fact]
    public async Task Two_pull_processes_for_one_account_do_no_double_work()
    {
        const int count = 80;
        Dovecot.AddUser("twice", "pw");
        for (var i = 0; i < count; i++)
            Dovecot.DeliverRaw("twice", TestMail.Create($"twice {i}", bodyBytes: 20_000));
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_TWICE_PW", "pw"));
        Assert.Equal(0, (await CliProcess.RunAsync(env, AddArgs("twice", "twice", "CLOUDSPOOL_SECRET_TWICE_PW", "sam", "--leave", "delete"))).ExitCode);

        var both = await Task.WhenAll(
            CliProcess.RunAsync(env, "job", "run", "pull", "--account", "twice"),
            CliProcess.RunAsync(env, "job", "run", "pull", "--account", "twice"));

        Assert.All(both, r => Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr));
        var stored = both.Sum(r => Count(r.Stdout, "new"));
        Assert.Equal(count, stored);
        // Neither fetched what the other had stored: no message was pulled twice.
        Assert.All(both, r => Assert.Equal(0, Count(r.Stdout, "already held")));
        Assert.Equal(count, (await Spool.ListAsync("sam")).Count);
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "twice", "pw"));
    }

    /// <summary>A figure from a `job run` result line, e.g. "ok: 3 new (...)" or "2 already held"; 0 for a skipped run.</summary>
    private static int Count(string stdout, string what)
    {
        var match = System.Text.RegularExpressions.Regex.Match(stdout, @"(\d+) " + what);
        return match.Success ? int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
    }

    [Fact]
    public async Task Run_schedules_accounts_added_while_it_runs_and_pulls_on_their_cron()
    {
        Dovecot.AddUser("sched", "pw");
        Dovecot.DeliverRaw("sched", TestMail.Create("scheduled"));
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_SCHED_PW", "pw"), ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"));
        using var host = CliProcess.Start(env, "run");
        await Task.Delay(1500);
        Assert.False(host.HasExited, host.Stderr);

        Assert.Equal(0, (await CliProcess.RunAsync(env, AddArgs("sched", "sched", "CLOUDSPOOL_SECRET_SCHED_PW", "tina", "--schedule", "*/2 * * * * ?"))).ExitCode);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await Spool.ListAsync("tina")).Count == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(500);
        Assert.Equal("scheduled", Assert.Single(await Spool.ListAsync("tina")).Summary.Subject);

        await host.TerminateAsync();
        var code = await host.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(code == 0, $"exit {code}: {host.Stderr}");
        Assert.Contains("sched: scheduled", host.Stderr);
    }

    // ESC ] 0 ; title BEL retitles the terminal, ESC [ 2 J clears it, CR rewrites the line.
    private const string Hostile = "\u001b]0;owned\u0007\u001b[2J\rFAKE";

    private static void AssertNoControl(string output)
    {
        foreach (var c in output.Replace(Environment.NewLine, "\n", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal))
            Assert.False(char.IsControl(c), $"U+{(int)c:X4} reached the output: {output}");
    }

    /// <summary>
    /// Issue 19, item 9: subjects, senders and upstream error texts are others' words. `messages list`, `rules test` and
    /// `status` show their control characters escaped; --json stays JSON (escaped by the serializer).
    /// </summary>
    [Fact]
    public async Task Messages_list_rules_test_and_status_escape_control_characters()
    {
        // The subject as an encoded word (what a sender would use to smuggle ESC and CR past a header parser), the
        // sender's name with BEL.
        var subject = "=?utf-8?b?" + Convert.ToBase64String(Encoding.UTF8.GetBytes("invoice " + Hostile)) + "?=";
        var raw = Encoding.ASCII.GetBytes($"From: \"Boss\u0007\" <boss@work.example>\r\nTo: alice@home.example\r\nSubject: {subject}\r\nMessage-ID: <esc@test>\r\n\r\nbody\r\n");
        await Spool.PutAsync("alice", raw);
        await Spool.Runtime.Accounts.AddAsync(new AccountDefinition
        {
            Name = "isp", Host = "pop.example.net", Username = "me", PasswordRef = "env:CLOUDSPOOL_SECRET_ISP", Mailbox = "alice",
        }, CancellationToken.None);
        await Spool.Runtime.States.SaveStateAsync(new AccountPullState
        {
            Account = "isp", FailureStreak = 2, LastAttempt = DateTimeOffset.UtcNow, LastError = "pop.example.net refused the login: -ERR " + Hostile,
            LastErrorKind = UpstreamErrorKind.Authentication,
        }, CancellationToken.None);
        var env = Spool.CliEnvironment(
            ("CLOUDSPOOL__Forward__Mailbox", "alice"),
            ("CLOUDSPOOL__Forward__Sender", "cloudspool@home.example"),
            ("CLOUDSPOOL__Forward__Destinations__0__Address", "phone@carrier.example"),
            ("CLOUDSPOOL__Forward__Smtp__Host", "127.0.0.1"));

        var list = await CliProcess.RunAsync(env, "messages", "list", "--mailbox", "alice");
        Assert.True(list.ExitCode == 0, list.Stderr);
        AssertNoControl(list.Stdout);
        Assert.Contains("invoice \\x1B]0;owned\\x07\\x1B[2J", list.Stdout, StringComparison.Ordinal); // (MimeKit drops the CR)
        Assert.Contains("Boss\\x07", list.Stdout, StringComparison.Ordinal);

        var json = await CliProcess.RunAsync(env, "messages", "list", "--mailbox", "alice", "--json");
        Assert.True(json.ExitCode == 0, json.Stderr);
        AssertNoControl(json.Stdout);
        using (var doc = JsonDocument.Parse(json.Stdout))
            Assert.StartsWith("invoice \u001b]0;owned\u0007\u001b[2J", doc.RootElement[0].GetProperty("summary").GetProperty("subject").GetString());

        var rules = await CliProcess.RunAsync(env, "rules", "test");
        Assert.True(rules.ExitCode == 0, rules.Stderr);
        AssertNoControl(rules.Stdout);
        Assert.Contains("invoice \\x1B]0;owned", rules.Stdout, StringComparison.Ordinal);

        var status = await CliProcess.RunAsync(env, "status");
        Assert.True(status.ExitCode == 0, status.Stderr);
        AssertNoControl(status.Stdout);
        Assert.Contains("-ERR \\x1B]0;owned\\x07\\x1B[2J\\rFAKE", status.Stdout, StringComparison.Ordinal);
    }

    /// <summary>
    /// Issue 19, item 5: a reference may name only a CLOUDSPOOL_SECRET_ variable or a file in the secrets directory; `account
    /// add` refuses others with the rule, and an account stored before the rule fails its runs with it (never its secret sent).
    /// </summary>
    [Fact]
    public async Task A_password_reference_outside_the_secret_rule_is_refused_when_added_and_when_used()
    {
        Dovecot.AddUser("legacy", "pw");
        var env = Spool.CliEnvironment(("ISP_PASSWORD", "pw"), ("LEGACY_PW", "pw"));
        var byName = await CliProcess.RunAsync(env, AddArgs("isp", "legacy", "ISP_PASSWORD", "box"));
        Assert.Equal(2, byName.ExitCode);
        Assert.Contains("starts with CLOUDSPOOL_SECRET_ (Secrets:EnvironmentPrefix)", byName.Stderr, StringComparison.Ordinal);
        Assert.Contains("env:CLOUDSPOOL_SECRET_ISP_PASSWORD", byName.Stderr, StringComparison.Ordinal);
        var environ = await CliProcess.RunAsync(env, "account", "add", "environ", "--host", Dovecot.Host, "--user", "legacy",
            "--password-ref", "file:/proc/self/environ", "--mailbox", "box");
        Assert.Equal(2, environ.ExitCode);
        Assert.Contains("(Secrets:Directory)", environ.Stderr, StringComparison.Ordinal);

        // A row stored before the rule (or written into storage by someone else): its runs fail with the rule.
        var legacy = PullHarness.Account(Dovecot, "legacy", "legacy", "pw", "box") with { PasswordRef = "env:LEGACY_PW" };
        await Spool.Runtime.Accounts.AddAsync(legacy, CancellationToken.None);
        var test = await CliProcess.RunAsync(env, "account", "test", "legacy");
        Assert.Equal(1, test.ExitCode);
        Assert.Contains("'env:LEGACY_PW' is not allowed", test.Stderr, StringComparison.Ordinal);
        var pull = await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "legacy");
        Assert.Equal(1, pull.ExitCode);
        Assert.Contains("is not allowed", pull.Stdout, StringComparison.Ordinal);
        var status = await CliProcess.RunAsync(env, "status");
        Assert.Contains("'env:LEGACY_PW' is not allowed", status.Stdout, StringComparison.Ordinal);
    }
}
