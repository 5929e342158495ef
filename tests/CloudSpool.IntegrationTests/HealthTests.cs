using CloudSpool.Core.Health;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;
using MimeKit;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The health job against a real Dovecot and Azurite: a failing upstream becomes one alert mail in the owner's
/// mailbox, recovery one more, never one per run, and a crash between storing the alert and noting it repeats nothing.
/// </summary>
public sealed class HealthTests : DovecotAndSpoolTest
{
    private static readonly HealthThresholds AlertAtOnce = new(TimeSpan.Zero, TimeSpan.FromDays(1));

    private async Task<HealthReport> CheckAsync(CloudSpool.Core.Accounts.AccountDefinition account)
    {
        var state = await Spool.Runtime.States.GetStateAsync(account.Name, CancellationToken.None);
        return await Spool.Runtime.Health.RunAsync([new HealthInput(account, state)], AlertAtOnce, CancellationToken.None);
    }

    private async Task<List<MimeMessage>> AlertsInAsync(string mailbox)
    {
        var result = new List<MimeMessage>();
        foreach (var m in await Spool.ListAsync(mailbox))
        {
            if (m.SourceAccount != HealthRunner.AlertSource)
                continue;
            result.Add(await MimeMessage.LoadAsync(new MemoryStream(await Spool.ReadRawAsync(m))));
        }
        return result;
    }

    [Fact]
    public async Task A_failing_account_alerts_once_into_its_mailbox_and_once_more_when_it_recovers()
    {
        Dovecot.AddUser("hal", "pw");
        Dovecot.DeliverRaw("hal", TestMail.Create("first mail"));
        var account = PullHarness.Account(Dovecot, "hal", "hal", "pw", "home");
        Assert.Equal(RunOutcome.Succeeded, (await Spool.PullAsync(account)).Outcome);

        var healthy = await CheckAsync(account);
        Assert.Equal(AccountHealthState.Ok, Assert.Single(healthy.Accounts).State);
        Assert.Contains("1 ok", healthy.Run.Summary);
        Assert.Empty(await AlertsInAsync("home"));

        await Dovecot.StopAsync();
        Assert.Equal(RunOutcome.Failed, (await Spool.PullAsync(account)).Outcome);
        var failing = await CheckAsync(account);
        Assert.Equal(AccountHealthState.Failing, Assert.Single(failing.Accounts).State);
        Assert.Contains("alerts raised: hal failing", failing.Run.Summary);
        var alert = Assert.Single(await AlertsInAsync("home"));
        Assert.Equal("[CloudSpool] hal: fetching is FAILING", alert.Subject);
        Assert.StartsWith("raised", alert.Headers[AlertMail.AlertHeader]);
        Assert.Equal("auto-generated", alert.Headers["Auto-Submitted"]);
        Assert.Contains("cannot fetch the mail of account hal", alert.TextBody);

        // Every later run while it keeps failing: no new mail.
        Assert.Equal(RunOutcome.Failed, (await Spool.PullAsync(account)).Outcome);
        Assert.DoesNotContain("alerts raised", (await CheckAsync(account)).Run.Summary);
        Assert.Single(await AlertsInAsync("home"));

        // A crash after the alert mail was stored but before it was noted as delivered: the retry stores nothing new.
        var open = Assert.Single(await Spool.Runtime.Alerts.ListAsync(CancellationToken.None));
        await Spool.Runtime.Alerts.UpdateAsync(open with { Delivered = false }, CancellationToken.None);
        await CheckAsync(account);
        Assert.Single(await AlertsInAsync("home"));
        Assert.True(Assert.Single(await Spool.Runtime.Alerts.ListAsync(CancellationToken.None)).Delivered);

        await Dovecot.RestartAsync();
        Assert.Equal(RunOutcome.Succeeded, (await Spool.PullAsync(account)).Outcome);
        var recovered = await CheckAsync(account);
        Assert.Contains("recovered: hal failing", recovered.Run.Summary);
        var alerts = await AlertsInAsync("home");
        Assert.Equal(2, alerts.Count);
        Assert.Contains(alerts, m => m.Subject == "[CloudSpool] hal: recovered" && m.Headers[AlertMail.AlertHeader]!.StartsWith("recovered", StringComparison.Ordinal));
        Assert.Empty(await Spool.Runtime.Alerts.ListAsync(CancellationToken.None));

        await CheckAsync(account);
        Assert.Equal(2, (await AlertsInAsync("home")).Count);
        Assert.Equal(6, (await Spool.Runtime.JobRuns.RecentAsync(HealthRunner.Job, 10, CancellationToken.None)).Count(r => r.Outcome == RunOutcome.Succeeded));
    }

    [Fact]
    public async Task An_alert_also_goes_to_the_forwarded_mailbox_once_whichever_mailbox_its_account_feeds()
    {
        Dovecot.AddUser("far", "pw");
        var account = PullHarness.Account(Dovecot, "far", "far", "pw", "archive");
        var runner = new HealthRunner(Spool.Runtime.Alerts, Spool.Runtime.Spool, Spool.Runtime.Leases, Spool.Runtime.JobRuns, TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<HealthRunner>.Instance) { PhoneMailbox = "phone-box" };
        async Task CheckAsync()
        {
            var state = await Spool.Runtime.States.GetStateAsync(account.Name, CancellationToken.None);
            await runner.RunAsync([new HealthInput(account, state)], AlertAtOnce, CancellationToken.None);
        }

        await Dovecot.StopAsync();
        Assert.Equal(RunOutcome.Failed, (await Spool.PullAsync(account)).Outcome);
        await CheckAsync();
        await CheckAsync();
        var inArchive = Assert.Single(await AlertsInAsync("archive"));
        var forPhone = Assert.Single(await AlertsInAsync("phone-box"));
        Assert.Equal("[CloudSpool] far: fetching is FAILING", forPhone.Subject);
        Assert.Equal(inArchive.MessageId, forPhone.MessageId);

        await Dovecot.RestartAsync();
        Assert.Equal(RunOutcome.Succeeded, (await Spool.PullAsync(account)).Outcome);
        await CheckAsync();
        Assert.Equal(2, (await AlertsInAsync("phone-box")).Count);
        Assert.Equal(2, (await AlertsInAsync("archive")).Count);
    }

    [Fact]
    public async Task Job_run_health_prints_each_account_and_status_tells_failing_from_quiet()
    {
        Dovecot.AddUser("quiet", "pw");
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_HEALTH_PW", "pw"), ("CLOUDSPOOL__Health__FailingAfter", "00:01:00"));
        var add = await CliProcess.RunAsync(env, "account", "add", "quiet", "--host", Dovecot.Host, "--port",
            Dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--tls", "none", "--user", "quiet",
            "--password-ref", "env:CLOUDSPOOL_SECRET_HEALTH_PW", "--mailbox", "quiet");
        Assert.True(add.ExitCode == 0, add.Stderr);
        Assert.Equal(0, (await CliProcess.RunAsync(env, "job", "run", "pull")).ExitCode);

        var health = await CliProcess.RunAsync(env, "job", "run", "health");
        Assert.True(health.ExitCode == 0, health.Stderr);
        Assert.Contains("quiet: OK: checked", health.Stdout);
        Assert.Contains("no new mail yet", health.Stdout);
        Assert.Contains("health: ok: 1 accounts: 1 ok", health.Stdout);

        await Dovecot.StopAsync();
        Assert.Equal(1, (await CliProcess.RunAsync(env, "job", "run", "pull")).ExitCode);
        var status = await CliProcess.RunAsync(env, "status");
        Assert.Contains("quiet: FAILING", status.Stdout);
        var list = await CliProcess.RunAsync(env, "schedule", "list");
        Assert.Contains("health: \"0 */5 * * * ?\" UTC (default)", list.Stdout);
    }

    /// <summary>
    /// Issue 19, item 10: the upstream server's error text reaches the owner and the phone in every alert, so it is quoted
    /// bounded, escaped and marked as the server's words, apart from CloudSpool's own sentences.
    /// </summary>
    [Fact]
    public async Task An_alert_quotes_the_servers_error_text_bounded_escaped_and_marked()
    {
        var account = new CloudSpool.Core.Accounts.AccountDefinition
        {
            Name = "loud", Host = "pop.example.net", Username = "me", PasswordRef = "env:CLOUDSPOOL_SECRET_LOUD", Mailbox = "loud",
        };
        await Spool.Runtime.Accounts.AddAsync(account, CancellationToken.None);
        var reply = "-ERR \u001b]0;owned\u0007\u001b[2J\rYour password expired: log in at http://evil.example/ " + new string('A', 5000);
        await Spool.Runtime.States.SaveStateAsync(new AccountPullState
        {
            Account = "loud", FailureStreak = 3, LastAttempt = DateTimeOffset.UtcNow, LastError = "pop.example.net refused the login: " + reply,
            LastErrorKind = UpstreamErrorKind.Authentication,
        }, CancellationToken.None);

        await CheckAsync(account);
        var alert = Assert.Single(await AlertsInAsync("loud"));
        var text = alert.TextBody ?? "";
        Assert.DoesNotContain(text, c => char.IsControl(c) && c is not '\n' and not '\r');
        Assert.Contains("quoting the upstream server (the server's words, not CloudSpool's", text, StringComparison.Ordinal);
        var quote = Assert.Single(text.Split('\n'), l => l.StartsWith("> ", StringComparison.Ordinal)).TrimEnd('\r');
        Assert.StartsWith("> pop.example.net refused the login: -ERR \\x1B]0;owned\\x07\\x1B[2J\\rYour password expired", quote, StringComparison.Ordinal);
        Assert.True(quote.Length < 400, quote);
        Assert.DoesNotContain(new string('A', 400), text, StringComparison.Ordinal);
    }
}
