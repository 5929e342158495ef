using CloudSpool.Core.Accounts;
using CloudSpool.Core.Health;
using CloudSpool.Core.Pull;

namespace CloudSpool.Core.Tests;

public sealed class HealthEvaluatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
    private static readonly HealthThresholds Thresholds = new(TimeSpan.FromHours(1), TimeSpan.FromHours(24));

    private static AccountDefinition Account(bool enabled = true) => new()
    {
        Name = "isp", Protocol = UpstreamProtocol.Pop3, Host = "mail.example.net", Port = 995, Tls = TlsMode.Implicit,
        Username = "me", PasswordRef = "env:X", Mailbox = "alice", Enabled = enabled,
    };

    private static AccountPullState State(DateTimeOffset? success, int streak = 0, DateTimeOffset? attempt = null) => new()
    {
        Account = "isp", LastSuccess = success, LastAttempt = attempt ?? success, FailureStreak = streak, LastError = streak > 0 ? "connection refused" : null,
    };

    [Fact]
    public void No_new_mail_is_ok_and_a_failure_streak_is_failing_but_alerts_only_past_the_threshold()
    {
        var quiet = HealthEvaluator.Evaluate(Account(), State(Now.AddMinutes(-5)), Now, Thresholds);
        Assert.Equal(AccountHealthState.Ok, quiet.State);
        Assert.Contains("no new mail yet", quiet.Reason);
        Assert.Empty(quiet.Alerts);

        var briefly = HealthEvaluator.Evaluate(Account(), State(Now.AddMinutes(-30), streak: 2, attempt: Now), Now, Thresholds);
        Assert.Equal(AccountHealthState.Failing, briefly.State);
        Assert.Contains("connection refused", briefly.Reason);
        Assert.Empty(briefly.Alerts);

        var long_ = HealthEvaluator.Evaluate(Account(), State(Now.AddMinutes(-61), streak: 5, attempt: Now), Now, Thresholds);
        Assert.Equal([HealthEvaluator.FailingCondition], long_.Alerts);
    }

    [Fact]
    public void Never_successful_accounts_alert_after_three_failures_and_silent_ones_go_stale()
    {
        Assert.Empty(HealthEvaluator.Evaluate(Account(), State(null, streak: 2, attempt: Now), Now, Thresholds).Alerts);
        Assert.Equal([HealthEvaluator.FailingCondition], HealthEvaluator.Evaluate(Account(), State(null, streak: 3, attempt: Now), Now, Thresholds).Alerts);

        var silent = HealthEvaluator.Evaluate(Account(), State(Now.AddHours(-25)), Now, Thresholds);
        Assert.Equal(AccountHealthState.Stale, silent.State);
        Assert.Equal([HealthEvaluator.StaleCondition], silent.Alerts);
        Assert.Contains("is a worker running", silent.Reason);

        Assert.Equal(AccountHealthState.NeverRun, HealthEvaluator.Evaluate(Account(), null, Now, Thresholds).State);
        var off = HealthEvaluator.Evaluate(Account(enabled: false), State(Now.AddDays(-30), streak: 9), Now, Thresholds);
        Assert.Equal(AccountHealthState.Disabled, off.State);
        Assert.Empty(off.Alerts);
    }

    [Fact]
    public void Alert_mail_is_the_same_bytes_every_time_it_is_rendered_from_one_record()
    {
        var alert = new AlertRecord { Account = "isp", Condition = "failing", Mailbox = "alice", RaisedAt = Now, Text = "line one\nline two" };
        var first = AlertMail.Raised(alert);
        Assert.Equal(first, AlertMail.Raised(alert));
        Assert.NotEqual(first, AlertMail.Recovered(alert with { RecoveredAt = Now.AddHours(1), RecoveryText = "ok" }));
        var parsed = MimeKit.MimeMessage.Load(new MemoryStream(first));
        Assert.Equal("[CloudSpool] isp: fetching is FAILING", parsed.Subject);
        Assert.Equal(Now, parsed.Date);
        Assert.Contains("line two", parsed.TextBody);
        Assert.DoesNotContain("\n", System.Text.Encoding.ASCII.GetString(first).Replace("\r\n", "", StringComparison.Ordinal));
    }

    [Fact]
    public void A_nearly_full_upstream_mailbox_alerts_from_the_configured_or_the_reported_quota()
    {
        const long MiB = 1 << 20;
        // A POP3 server tells no quota: the account's own, against the size its listing summed.
        var configured = Account() with { QuotaBytes = 50 * MiB };
        var roomy = HealthEvaluator.Evaluate(configured, State(Now) with { UpstreamBytes = 10 * MiB }, Now, Thresholds);
        Assert.Empty(roomy.Alerts);
        Assert.Contains("upstream mailbox 10.0 of 50.0 MiB (20 %) full", roomy.Reason);
        var full = HealthEvaluator.Evaluate(configured, State(Now) with { UpstreamBytes = 42 * MiB }, Now, Thresholds);
        Assert.Equal(AccountHealthState.Ok, full.State);
        Assert.Equal([HealthEvaluator.QuotaCondition], full.Alerts);
        Assert.Contains("42.0 of 50.0 MiB (84 %) full: it will refuse new mail when full", full.Reason);

        // An IMAP server's QUOTA: its limit and its own figure of what is used.
        var reported = State(Now) with { UpstreamBytes = 1 * MiB, UpstreamQuotaBytes = 10 * MiB, UpstreamQuotaUsedBytes = 9 * MiB };
        Assert.Equal([HealthEvaluator.QuotaCondition], HealthEvaluator.Evaluate(Account(), reported, Now, Thresholds).Alerts);
        Assert.Empty(HealthEvaluator.Evaluate(Account(), reported, Now, Thresholds with { QuotaWarnAt = 0.95 }).Alerts);
        // No quota known: nothing to say.
        Assert.Null(HealthEvaluator.QuotaUse(Account(), State(Now) with { UpstreamBytes = 42 * MiB }));
        Assert.DoesNotContain("upstream mailbox", HealthEvaluator.Evaluate(Account(), State(Now), Now, Thresholds).Reason);

        var alert = MimeKit.MimeMessage.Load(new MemoryStream(AlertMail.Raised(new AlertRecord
        {
            Account = "isp", Condition = HealthEvaluator.QuotaCondition, Mailbox = "alice", RaisedAt = Now, Text = full.Reason,
        })));
        Assert.Equal("[CloudSpool] isp: upstream mailbox nearly FULL", alert.Subject);
    }
}
