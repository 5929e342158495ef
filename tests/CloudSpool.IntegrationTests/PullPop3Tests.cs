using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.IntegrationTests.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>The pull job against a real Dovecot over POP3 and a real Azurite.</summary>
public sealed class PullPop3Tests : IAsyncLifetime
{
    private DovecotServer _dovecot = null!;
    private PullHarness _spool = null!;

    public async Task InitializeAsync()
    {
        _dovecot = await DovecotServer.StartAsync();
        _spool = await PullHarness.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _spool.DisposeAsync();
        await _dovecot.DisposeAsync();
    }

    [Fact]
    public async Task Corpus_is_stored_byte_exact_and_no_message_breaks_the_run()
    {
        _dovecot.AddUser("corpus", "pw");
        foreach (var file in TestMail.CorpusFiles())
            _dovecot.DeliverRaw("corpus", await File.ReadAllBytesAsync(file));
        var upstream = await UpstreamProbe.FetchAllAsync(_dovecot, "corpus", "pw");
        var account = PullHarness.Account(_dovecot, "corpus", "corpus", "pw", "alice");

        var run = await _spool.PullAsync(account);

        Assert.Equal(PullOutcome.Succeeded, run.Outcome);
        Assert.Equal(0, run.FailedMessages);
        var stored = await _spool.ListAsync("alice");
        // Identical files in the corpus (e.g. *.anonymized.eml twins) are the same message: stored once.
        var distinct = upstream.Values.Select(b => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(b))).Distinct().Count();
        Assert.Equal(distinct, stored.Count);
        Assert.Equal(upstream.Count, run.Stored + run.Duplicates);
        foreach (var message in stored)
        {
            var raw = await _spool.ReadRawAsync(message);
            Assert.Equal(upstream[message.SourceKey], raw);
            Assert.Equal(raw.Length, message.RawLength);
            using var meter = new IngestMeter();
            meter.Append(raw);
            Assert.Equal(meter.Complete().Pop3Size, message.Pop3Size);
            Assert.Matches("^[0-9a-f]{40}$", message.Uidl);
        }
        Assert.Contains(stored, m => m.Summary.Subject is not null && m.Summary.AttachmentCount > 0);
        // Keep policy: nothing changed upstream; a second run stores nothing.
        Assert.Equal(upstream.Count, await UpstreamProbe.CountAsync(_dovecot, "corpus", "pw"));
        var again = await _spool.PullAsync(account);
        Assert.Equal((PullOutcome.Succeeded, 0, 0), (again.Outcome, again.Stored, again.Duplicates));
        Assert.Equal(stored.Count, (await _spool.ListAsync("alice")).Count);
    }

    [Fact]
    public async Task Delete_policy_drains_the_mailbox_and_only_after_storing()
    {
        _dovecot.AddUser("tiny", "pw");
        for (var i = 0; i < 5; i++)
            _dovecot.DeliverRaw("tiny", TestMail.Create($"drain {i}"));
        var account = PullHarness.Account(_dovecot, "tiny", "tiny", "pw", "bob") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 5, 5), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "tiny", "pw"));
        Assert.Equal(5, (await _spool.ListAsync("bob")).Count);

        _dovecot.DeliverRaw("tiny", TestMail.Create("later"));
        var next = await _spool.PullAsync(account);
        Assert.Equal((1, 1), (next.Stored, next.DeletedUpstream));
        Assert.Equal(6, (await _spool.ListAsync("bob")).Count);
        // The ledger keeps only what is still upstream: the first five are forgotten once seen gone.
        Assert.Single(await _spool.Runtime.Ledger.LoadSeenAsync("tiny", "", "pop3", CancellationToken.None));
    }

    [Fact]
    public async Task Run_history_is_kept_for_thirty_days()
    {
        _dovecot.AddUser("history", "pw");
        var account = PullHarness.Account(_dovecot, "history", "history", "pw", "yves");
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var engine = _spool.EngineWith(clock);
        var request = new PullRunRequest { IgnoreBackoff = true };

        var first = await engine.RunAsync(account, request, CancellationToken.None);
        clock.Now += TimeSpan.FromDays(29);
        await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal(2, (await _spool.Runtime.States.RecentRunsAsync("history", 10, CancellationToken.None)).Count);
        clock.Now += TimeSpan.FromDays(2);
        await engine.RunAsync(account, request, CancellationToken.None);

        var runs = await _spool.Runtime.States.RecentRunsAsync("history", 10, CancellationToken.None);
        Assert.Equal(2, runs.Count);
        Assert.DoesNotContain(runs, r => r.Started == first.Started);
    }

    [Fact]
    public async Task Delete_larger_than_removes_only_large_messages_once_stored()
    {
        _dovecot.AddUser("big", "pw");
        _dovecot.DeliverRaw("big", TestMail.Create("small", bodyBytes: 500));
        _dovecot.DeliverRaw("big", TestMail.Create("large", bodyBytes: 50_000));
        var account = PullHarness.Account(_dovecot, "big", "big", "pw", "carol") with { Leave = new LeavePolicy { DeleteLargerThan = 10_000 } };

        var run = await _spool.PullAsync(account);

        Assert.Equal((2, 1), (run.Stored, run.DeletedUpstream));
        var left = await UpstreamProbe.FetchAllAsync(_dovecot, "big", "pw");
        Assert.Contains("Subject: small", System.Text.Encoding.ASCII.GetString(Assert.Single(left.Values)));
    }

    [Fact]
    public async Task Delete_after_days_counts_from_when_the_message_was_stored()
    {
        _dovecot.AddUser("aging", "pw");
        _dovecot.DeliverRaw("aging", TestMail.Create("old"));
        var account = PullHarness.Account(_dovecot, "aging", "aging", "pw", "dave") with { Leave = new LeavePolicy { DeleteAfterDays = 30 } };
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var engine = _spool.EngineWith(clock);
        var request = new PullRunRequest { IgnoreBackoff = true };

        var first = await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal((1, 0), (first.Stored, first.DeletedUpstream));

        clock.Now += TimeSpan.FromDays(29);
        _dovecot.DeliverRaw("aging", TestMail.Create("new"));
        var second = await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal((1, 0), (second.Stored, second.DeletedUpstream));

        clock.Now += TimeSpan.FromDays(1);
        var third = await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal((0, 1), (third.Stored, third.DeletedUpstream));
        var left = await UpstreamProbe.FetchAllAsync(_dovecot, "aging", "pw");
        Assert.Contains("Subject: new", System.Text.Encoding.ASCII.GetString(Assert.Single(left.Values)));
    }

    [Fact]
    public async Task First_run_skip_takes_the_existing_mailbox_as_seen_and_pulls_only_new_mail()
    {
        _dovecot.AddUser("skip", "pw");
        for (var i = 0; i < 3; i++)
            _dovecot.DeliverRaw("skip", TestMail.Create($"backlog {i}"));
        var account = PullHarness.Account(_dovecot, "skip", "skip", "pw", "erin") with
        {
            FirstRun = FirstRunMode.SkipExisting,
            Leave = new LeavePolicy { DeleteWhenStored = true },
        };

        var first = await _spool.PullAsync(account);
        Assert.Equal((0, 3, 0), (first.Stored, first.TakenAsSeen, first.DeletedUpstream));
        Assert.Empty(await _spool.ListAsync("erin"));
        // Never delete what was never stored, whatever the policy.
        Assert.Equal(3, await UpstreamProbe.CountAsync(_dovecot, "skip", "pw"));

        _dovecot.DeliverRaw("skip", TestMail.Create("fresh"));
        var second = await _spool.PullAsync(account);
        Assert.Equal((1, 0, 1), (second.Stored, second.TakenAsSeen, second.DeletedUpstream));
        Assert.Equal("fresh", Assert.Single(await _spool.ListAsync("erin")).Summary.Subject);
        Assert.Equal(3, await UpstreamProbe.CountAsync(_dovecot, "skip", "pw"));
    }

    [Fact]
    public async Task Same_message_through_two_accounts_is_stored_once_in_their_mailbox()
    {
        _dovecot.AddUser("isp", "pw1");
        _dovecot.AddUser("webmail", "pw2");
        _dovecot.DeliverRaw("isp", TestMail.Create("shared", messageId: "shared-1@example.org", received: "from mx1.isp.example"));
        _dovecot.DeliverRaw("webmail", TestMail.Create("shared", messageId: "shared-1@example.org", received: "from mx.webmail.example"));
        _dovecot.DeliverRaw("webmail", TestMail.Create("only webmail"));
        var isp = PullHarness.Account(_dovecot, "isp", "isp", "pw1", "frank");
        var webmail = PullHarness.Account(_dovecot, "webmail", "webmail", "pw2", "frank");

        var a = await _spool.PullAsync(isp);
        var b = await _spool.PullAsync(webmail);

        Assert.Equal((1, 0), (a.Stored, a.Duplicates));
        Assert.Equal((1, 1), (b.Stored, b.Duplicates));
        var stored = await _spool.ListAsync("frank");
        Assert.Equal(2, stored.Count);
        Assert.Equal("isp", stored.Single(m => m.Summary.Subject == "shared").SourceAccount);
        // A second run of either stores nothing and does not fetch again.
        Assert.Equal((0, 0), ((await _spool.PullAsync(webmail)).Stored, (await _spool.PullAsync(webmail)).Duplicates));
    }

    [Fact]
    public async Task A_dead_upstream_is_recorded_with_its_kind_streak_and_backoff_and_recovery_clears_it()
    {
        _dovecot.AddUser("flaky", "pw");
        _dovecot.DeliverRaw("flaky", TestMail.Create("waiting"));
        var account = PullHarness.Account(_dovecot, "flaky", "flaky", "pw", "gina");
        await _dovecot.StopAsync();

        var first = await _spool.PullAsync(account);
        var second = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Failed, UpstreamErrorKind.Connect), (first.Outcome, first.ErrorKind));
        Assert.Contains(_dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture), first.Error);
        var state = await _spool.Runtime.States.GetStateAsync("flaky", CancellationToken.None);
        Assert.Equal(2, state!.FailureStreak);
        Assert.Null(state.LastSuccess);
        Assert.True(state.NextAttemptAfter > DateTimeOffset.UtcNow.AddSeconds(45), "second failure backs off 2 x base");

        // A scheduled run (not forced) during the backoff is skipped and says why.
        var scheduled = await _spool.Runtime.Engine.RunAsync(account, new PullRunRequest(), CancellationToken.None);
        Assert.Equal(PullOutcome.Skipped, scheduled.Outcome);
        Assert.Contains("backing off", scheduled.SkipReason);

        await _dovecot.RestartAsync();
        var recovered = await _spool.PullAsync(account);
        Assert.Equal((PullOutcome.Succeeded, 1), (recovered.Outcome, recovered.Stored));
        state = await _spool.Runtime.States.GetStateAsync("flaky", CancellationToken.None);
        Assert.Equal((0, (DateTimeOffset?)null), (state!.FailureStreak, state.NextAttemptAfter));
        Assert.NotNull(state.LastSuccess);
        var runs = await _spool.Runtime.States.RecentRunsAsync("flaky", 10, CancellationToken.None);
        Assert.Equal([PullOutcome.Succeeded, PullOutcome.Skipped, PullOutcome.Failed, PullOutcome.Failed], runs.Select(r => r.Outcome));
    }

    [Fact]
    public async Task A_wrong_password_is_an_authentication_failure_and_changes_nothing()
    {
        _dovecot.AddUser("locked", "right");
        _dovecot.DeliverRaw("locked", TestMail.Create("kept"));
        var account = PullHarness.Account(_dovecot, "locked", "locked", "wrong", "hank") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Failed, UpstreamErrorKind.Authentication), (run.Outcome, run.ErrorKind));
        Assert.Equal(1, await UpstreamProbe.CountAsync(_dovecot, "locked", "right"));
    }

    [Fact]
    public async Task A_missing_password_secret_is_a_configuration_failure()
    {
        _dovecot.AddUser("nosecret", "pw");
        var account = PullHarness.Account(_dovecot, "nosecret", "nosecret", "pw", "ivan") with { PasswordRef = "env:CLOUDSPOOL_TEST_NOT_SET_ANYWHERE" };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Failed, UpstreamErrorKind.Configuration), (run.Outcome, run.ErrorKind));
        Assert.Contains("CLOUDSPOOL_TEST_NOT_SET_ANYWHERE", run.Error);
    }

    [Theory]
    [InlineData(TlsMode.Implicit)]
    [InlineData(TlsMode.StartTls)]
    public async Task Tls_with_a_trusted_private_certificate_works(TlsMode tls)
    {
        _dovecot.AddUser("secure", "pw");
        _dovecot.DeliverRaw("secure", TestMail.Create("over tls"));
        var account = PullHarness.Account(_dovecot, "secure", "secure", "pw", "judy", tls: tls);

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 1), (run.Outcome, run.Stored));
    }

    [Fact]
    public async Task An_untrusted_certificate_is_refused_as_a_tls_failure()
    {
        _dovecot.AddUser("mitm", "pw");
        _dovecot.DeliverRaw("mitm", TestMail.Create("secret"));
        var account = PullHarness.Account(_dovecot, "mitm", "mitm", "pw", "kim", tls: TlsMode.Implicit) with { TrustedCertificateFile = null };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Failed, UpstreamErrorKind.Tls), (run.Outcome, run.ErrorKind));
        Assert.Empty(await _spool.ListAsync("kim"));
    }

    [Fact]
    public async Task Two_pullers_of_one_account_never_work_at_once()
    {
        _dovecot.AddUser("busy", "pw");
        for (var i = 0; i < 40; i++)
            _dovecot.DeliverRaw("busy", TestMail.Create($"busy {i}", bodyBytes: 20_000));
        var account = PullHarness.Account(_dovecot, "busy", "busy", "pw", "lee") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        // Two engines as two workers would have: same storage, separate everything else.
        await using var other = await PullHarness.AttachAsync(_spool);
        var runs = await Task.WhenAll(_spool.PullAsync(account), other.PullAsync(account));

        Assert.Single(runs, r => r.Outcome == PullOutcome.Skipped && r.SkipReason!.Contains("another worker"));
        Assert.Equal(40, runs.Sum(r => r.Stored));
        Assert.Equal(40, (await _spool.ListAsync("lee")).Count);
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "busy", "pw"));
    }

    [Fact]
    public async Task Apop_and_sasl_are_used_when_asked_and_a_missing_apop_is_refused_clearly()
    {
        await using var apopServer = await DovecotServer.StartAsync("auth_mechanisms = plain login apop");
        apopServer.AddUser("apop", "pw");
        apopServer.DeliverRaw("apop", TestMail.Create("by apop"));
        _dovecot.AddUser("plain", "pw");
        _dovecot.DeliverRaw("plain", TestMail.Create("by sasl plain"));

        var apop = await _spool.PullAsync(PullHarness.Account(apopServer, "apop", "apop", "pw", "wanda") with { AuthMechanism = "APOP" });
        var sasl = await _spool.PullAsync(PullHarness.Account(_dovecot, "plain", "plain", "pw", "wanda") with { AuthMechanism = "PLAIN" });
        var noApop = await _spool.PullAsync(PullHarness.Account(_dovecot, "noapop", "plain", "pw", "wanda") with { AuthMechanism = "APOP" });

        Assert.Equal((PullOutcome.Succeeded, 1), (apop.Outcome, apop.Stored));
        Assert.Equal((PullOutcome.Succeeded, 1), (sasl.Outcome, sasl.Stored));
        Assert.Equal((PullOutcome.Failed, UpstreamErrorKind.Authentication), (noApop.Outcome, noApop.ErrorKind));
        Assert.Contains("APOP", noApop.Error);
    }

    [Fact]
    public async Task Long_imports_report_progress()
    {
        _dovecot.AddUser("progress", "pw");
        for (var i = 0; i < 6; i++)
            _dovecot.DeliverRaw("progress", TestMail.Create($"progress {i}"));
        var account = PullHarness.Account(_dovecot, "progress", "progress", "pw", "xena");
        var reports = new List<PullProgress>();
        var engine = _spool.EngineWith(TimeProvider.System, o => o with { ProgressInterval = TimeSpan.Zero });

        await engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true, Progress = new SynchronousProgress<PullProgress>(reports.Add) }, CancellationToken.None);

        Assert.Equal([1, 2, 3, 4, 5, 6], reports.Select(r => r.Done));
        Assert.All(reports, r => Assert.Equal(6, r.Total));
    }

    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }

    [Fact]
    public async Task Malformed_empty_and_binary_messages_are_stored_and_flagged_not_hidden()
    {
        _dovecot.AddUser("odd", "pw");
        _dovecot.DeliverRaw("odd", []);
        _dovecot.DeliverRaw("odd", [0, 1, 2, 0xFF, 0xFE, (byte)'\r', (byte)'\n', 0, 0x80]);
        _dovecot.DeliverRaw("odd", TestMail.Create("normal"));
        var upstream = await UpstreamProbe.FetchAllAsync(_dovecot, "odd", "pw");
        var account = PullHarness.Account(_dovecot, "odd", "odd", "pw", "zoe") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 3, 0), (run.Outcome, run.Stored, run.FailedMessages));
        var stored = await _spool.ListAsync("zoe");
        Assert.Equal(2, stored.Count(m => m.Summary.Malformed && !string.IsNullOrEmpty(m.Summary.ParseError)));
        foreach (var m in stored)
            Assert.Equal(upstream[m.SourceKey], await _spool.ReadRawAsync(m));
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "odd", "pw"));
    }

    [Fact]
    public async Task A_message_over_the_size_limit_stays_upstream_and_is_reported()
    {
        _dovecot.AddUser("huge", "pw");
        _dovecot.DeliverRaw("huge", TestMail.Create("too big", bodyBytes: 300_000));
        _dovecot.DeliverRaw("huge", TestMail.Create("fine"));
        var account = PullHarness.Account(_dovecot, "huge", "huge", "pw", "abe") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        var engine = _spool.EngineWith(TimeProvider.System, o => o with { MaxMessageBytes = 100_000 });

        var run = await engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((PullOutcome.Succeeded, 1, 1), (run.Outcome, run.Stored, run.FailedMessages));
        Assert.Contains("larger than the limit", Assert.Single(await _spool.Runtime.Ledger.ListMessageFailuresAsync("huge", CancellationToken.None)).Error);
        Assert.Equal(1, await UpstreamProbe.CountAsync(_dovecot, "huge", "pw"));
    }
}
