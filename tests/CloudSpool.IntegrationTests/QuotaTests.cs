using CloudSpool.Core.Accounts;
using CloudSpool.Core.Health;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// Upstream mailbox size and quota (issue 6): the quota an IMAP server reports (Dovecot with its quota plugin, limit
/// 64 KiB) and one configured for a POP3 account, a nearly full mailbox alerting once, and what was pulled today.
/// </summary>
public sealed class QuotaTests : IAsyncLifetime
{
    private const string QuotaConfig = """
        mail_plugins = $mail_plugins quota
        protocol imap {
          mail_plugins = $mail_plugins imap_quota
        }
        plugin {
          quota = maildir:User quota
          quota_rule = *:storage=64K
        }
        """;

    private DovecotServer _dovecot = null!;
    private PullHarness _spool = null!;

    public async Task InitializeAsync()
    {
        _dovecot = await DovecotServer.StartAsync(QuotaConfig);
        _spool = await PullHarness.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _spool.DisposeAsync();
        await _dovecot.DisposeAsync();
    }

    private void Fill(string user)
    {
        for (var i = 0; i < 3; i++)
            _dovecot.DeliverRaw(user, TestMail.Create($"bulky {i}", bodyBytes: 18_000));
    }

    [Fact]
    public async Task The_quota_an_imap_server_reports_is_recorded_and_a_nearly_full_mailbox_alerts_once()
    {
        _dovecot.AddUser("small", "pw");
        Fill("small");
        var account = PullHarness.Account(_dovecot, "small", "small", "pw", "small", UpstreamProtocol.Imap);
        Assert.Equal((RunOutcome.Succeeded, 3), await PullAsync(account));

        var state = await _spool.Runtime.States.GetStateAsync("small", CancellationToken.None);
        Assert.Equal(64 * 1024, state!.UpstreamQuotaBytes);
        Assert.InRange(state.UpstreamQuotaUsedBytes!.Value, 50 * 1024, 64 * 1024);
        Assert.Equal(3, state.TodayMessages);

        var thresholds = _spool.Runtime.HealthThresholds;
        var first = await _spool.Runtime.Health.RunAsync([new HealthInput(account, state)], thresholds, CancellationToken.None);
        Assert.Contains("alerts raised: small quota", first.Run.Summary, StringComparison.Ordinal);
        await _spool.Runtime.Health.RunAsync([new HealthInput(account, state)], thresholds, CancellationToken.None);
        var alerts = (await _spool.ListAsync("small")).Where(m => m.SourceAccount == HealthRunner.AlertSource).ToList();
        Assert.Equal("[CloudSpool] small: upstream mailbox nearly FULL", Assert.Single(alerts).Summary.Subject);
    }

    [Fact]
    public async Task A_pop3_accounts_configured_quota_shows_in_status_and_job_run_health_alerts()
    {
        _dovecot.AddUser("pop", "pw");
        Fill("pop");
        var env = _spool.CliEnvironment(("CLOUDSPOOL_SECRET_QUOTA_PW", "pw"));
        var add = await CliProcess.RunAsync(env, "account", "add", "pop", "--host", _dovecot.Host, "--port",
            _dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--tls", "none", "--user", "pop",
            "--password-ref", "env:CLOUDSPOOL_SECRET_QUOTA_PW", "--mailbox", "pop", "--quota", "64K");
        Assert.True(add.ExitCode == 0, add.Stderr);
        var bad = await CliProcess.RunAsync(env, "account", "add", "other", "--host", "h", "--user", "u", "--password-ref", "env:X",
            "--mailbox", "m", "--quota", "lots");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--quota: 'lots' is not a size", bad.Stderr, StringComparison.Ordinal);

        Assert.Equal(0, (await CliProcess.RunAsync(env, "job", "run", "pull")).ExitCode);
        var status = await CliProcess.RunAsync(env, "status");
        Assert.Contains("today 3 new", status.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"upstream mailbox 0\.\d of 0\.1 MiB \(\d+ %\) full: NEARLY FULL", status.Stdout);

        var health = await CliProcess.RunAsync(env, "job", "run", "health");
        Assert.True(health.ExitCode == 0, health.Stderr);
        Assert.Contains("alerts raised: pop quota", health.Stdout, StringComparison.Ordinal);

        // The status page says it too.
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Core.Edge.Pop3User("owner", "pop", CloudSpool.Edge.Pop3Passwords.Hash("owner-pw")), CancellationToken.None));
        using var host = CliProcess.Start(StatusPageTests.PageEnvironment(_spool, ("CLOUDSPOOL_SECRET_QUOTA_PW", "pw")), "run");
        var url = await StatusPageTests.WaitForPageAsync(host);
        using var handler = new System.Net.Http.HttpClientHandler { CookieContainer = new System.Net.CookieContainer() };
        using var client = new System.Net.Http.HttpClient(handler) { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };
        var token = await StatusPageTests.TokenOfAsync(client, "login");
        var login = await client.PostAsync(new Uri("login", UriKind.Relative), StatusPageTests.Form(("_token", token), ("user", "owner"), ("password", "owner-pw")));
        Assert.True(login.IsSuccessStatusCode, login.StatusCode.ToString());
        var html = await client.GetStringAsync(new Uri("/", UriKind.Relative));
        Assert.Contains("data-quota=\"warning\"", html, StringComparison.Ordinal);
        Assert.Contains("today 3 new", html, StringComparison.Ordinal);
        await host.TerminateAsync();
    }

    private async Task<(RunOutcome, int)> PullAsync(AccountDefinition account)
    {
        var run = await _spool.PullAsync(account);
        return (run.Outcome, run.Stored);
    }
}
