using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>The pull job against a real Dovecot over POP3 and a real Azurite.</summary>
public sealed class PullPop3Tests : DovecotAndSpoolTest
{
    [Fact]
    public async Task Corpus_is_stored_byte_exact_and_no_message_breaks_the_run()
    {
        Dovecot.AddUser("corpus", "pw");
        foreach (var file in TestMail.CorpusFiles())
            Dovecot.DeliverRaw("corpus", await File.ReadAllBytesAsync(file));
        var upstream = await UpstreamProbe.FetchAllAsync(Dovecot, "corpus", "pw");
        var account = PullHarness.Account(Dovecot, "corpus", "corpus", "pw", "alice");

        var run = await Spool.PullAsync(account);

        Assert.Equal(RunOutcome.Succeeded, run.Outcome);
        Assert.Equal(0, run.FailedMessages);
        var stored = await Spool.ListAsync("alice");
        // Identical files in the corpus (e.g. *.anonymized.eml twins) are the same message: stored once.
        var distinct = upstream.Values.Select(b => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(b))).Distinct().Count();
        Assert.Equal(distinct, stored.Count);
        Assert.Equal(upstream.Count, run.Stored + run.Duplicates);
        foreach (var message in stored)
        {
            var raw = await Spool.ReadRawAsync(message);
            Assert.Equal(upstream[message.SourceKey], raw);
            Assert.Equal(raw.Length, message.RawLength);
            using var meter = new IngestMeter();
            meter.Append(raw);
            Assert.Equal(meter.Complete().Pop3Size, message.Pop3Size);
            Assert.Matches("^[0-9a-f]{40}$", message.Uidl);
        }
        Assert.Contains(stored, m => m.Summary.Subject is not null && m.Summary.AttachmentCount > 0);
        // Keep policy: nothing changed upstream; a second run stores nothing.
        Assert.Equal(upstream.Count, await UpstreamProbe.CountAsync(Dovecot, "corpus", "pw"));
        var again = await Spool.PullAsync(account);
        Assert.Equal((RunOutcome.Succeeded, 0, 0), (again.Outcome, again.Stored, again.Duplicates));
        Assert.Equal(stored.Count, (await Spool.ListAsync("alice")).Count);
    }

    [Fact]
    public async Task Delete_policy_drains_the_mailbox_and_only_after_storing()
    {
        Dovecot.AddUser("tiny", "pw");
        for (var i = 0; i < 5; i++)
            Dovecot.DeliverRaw("tiny", TestMail.Create($"drain {i}"));
        var account = PullHarness.Account(Dovecot, "tiny", "tiny", "pw", "bob") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 5, 5), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "tiny", "pw"));
        Assert.Equal(5, (await Spool.ListAsync("bob")).Count);

        Dovecot.DeliverRaw("tiny", TestMail.Create("later"));
        var next = await Spool.PullAsync(account);
        Assert.Equal((1, 1), (next.Stored, next.DeletedUpstream));
        Assert.Equal(6, (await Spool.ListAsync("bob")).Count);
        // The ledger keeps only what is still upstream: each entry is forgotten once QUIT confirmed its deletion.
        Assert.Empty(await Spool.Runtime.Ledger.LoadSeenAsync("tiny", "", "pop3", CancellationToken.None));
    }

    [Fact]
    public async Task Run_history_is_kept_for_thirty_days()
    {
        Dovecot.AddUser("history", "pw");
        var account = PullHarness.Account(Dovecot, "history", "history", "pw", "yves");
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var engine = Spool.EngineWith(clock);
        var request = new PullRunRequest { IgnoreBackoff = true };

        var first = await engine.RunAsync(account, request, CancellationToken.None);
        clock.Now += TimeSpan.FromDays(29);
        await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal(2, (await Spool.Runtime.States.RecentRunsAsync("history", 10, CancellationToken.None)).Count);
        clock.Now += TimeSpan.FromDays(2);
        await engine.RunAsync(account, request, CancellationToken.None);

        var runs = await Spool.Runtime.States.RecentRunsAsync("history", 10, CancellationToken.None);
        Assert.Equal(2, runs.Count);
        Assert.DoesNotContain(runs, r => r.Started == first.Started);
    }

    [Fact]
    public async Task Delete_larger_than_removes_only_large_messages_once_stored()
    {
        Dovecot.AddUser("big", "pw");
        Dovecot.DeliverRaw("big", TestMail.Create("small", bodyBytes: 500));
        Dovecot.DeliverRaw("big", TestMail.Create("large", bodyBytes: 50_000));
        var account = PullHarness.Account(Dovecot, "big", "big", "pw", "carol") with { Leave = new LeavePolicy { DeleteLargerThan = 10_000 } };

        var run = await Spool.PullAsync(account);

        Assert.Equal((2, 1), (run.Stored, run.DeletedUpstream));
        var left = await UpstreamProbe.FetchAllAsync(Dovecot, "big", "pw");
        Assert.Contains("Subject: small", System.Text.Encoding.ASCII.GetString(Assert.Single(left.Values)));
    }

    [Fact]
    public async Task Delete_after_days_counts_from_when_the_message_was_stored()
    {
        Dovecot.AddUser("aging", "pw");
        Dovecot.DeliverRaw("aging", TestMail.Create("old"));
        var account = PullHarness.Account(Dovecot, "aging", "aging", "pw", "dave") with { Leave = new LeavePolicy { DeleteAfterDays = 30 } };
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var engine = Spool.EngineWith(clock);
        var request = new PullRunRequest { IgnoreBackoff = true };

        var first = await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal((1, 0), (first.Stored, first.DeletedUpstream));

        clock.Now += TimeSpan.FromDays(29);
        Dovecot.DeliverRaw("aging", TestMail.Create("new"));
        var second = await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal((1, 0), (second.Stored, second.DeletedUpstream));

        clock.Now += TimeSpan.FromDays(1);
        var third = await engine.RunAsync(account, request, CancellationToken.None);
        Assert.Equal((0, 1), (third.Stored, third.DeletedUpstream));
        var left = await UpstreamProbe.FetchAllAsync(Dovecot, "aging", "pw");
        Assert.Contains("Subject: new", System.Text.Encoding.ASCII.GetString(Assert.Single(left.Values)));
    }

    [Fact]
    public async Task First_run_skip_takes_the_existing_mailbox_as_seen_and_pulls_only_new_mail()
    {
        Dovecot.AddUser("skip", "pw");
        for (var i = 0; i < 3; i++)
            Dovecot.DeliverRaw("skip", TestMail.Create($"backlog {i}"));
        var account = PullHarness.Account(Dovecot, "skip", "skip", "pw", "erin") with
        {
            FirstRun = FirstRunMode.SkipExisting,
            Leave = new LeavePolicy { DeleteWhenStored = true },
        };

        var first = await Spool.PullAsync(account);
        Assert.Equal((0, 3, 0), (first.Stored, first.TakenAsSeen, first.DeletedUpstream));
        Assert.Empty(await Spool.ListAsync("erin"));
        // Never delete what was never stored, whatever the policy.
        Assert.Equal(3, await UpstreamProbe.CountAsync(Dovecot, "skip", "pw"));

        Dovecot.DeliverRaw("skip", TestMail.Create("fresh"));
        var second = await Spool.PullAsync(account);
        Assert.Equal((1, 0, 1), (second.Stored, second.TakenAsSeen, second.DeletedUpstream));
        Assert.Equal("fresh", Assert.Single(await Spool.ListAsync("erin")).Summary.Subject);
        Assert.Equal(3, await UpstreamProbe.CountAsync(Dovecot, "skip", "pw"));
    }

    [Fact]
    public async Task Same_message_through_two_accounts_is_stored_once_in_their_mailbox()
    {
        Dovecot.AddUser("isp", "pw1");
        Dovecot.AddUser("webmail", "pw2");
        Dovecot.DeliverRaw("isp", TestMail.Create("shared", messageId: "shared-1@example.org", received: "from mx1.isp.example"));
        Dovecot.DeliverRaw("webmail", TestMail.Create("shared", messageId: "shared-1@example.org", received: "from mx.webmail.example"));
        Dovecot.DeliverRaw("webmail", TestMail.Create("only webmail"));
        var isp = PullHarness.Account(Dovecot, "isp", "isp", "pw1", "frank");
        var webmail = PullHarness.Account(Dovecot, "webmail", "webmail", "pw2", "frank");

        var a = await Spool.PullAsync(isp);
        var b = await Spool.PullAsync(webmail);

        Assert.Equal((1, 0), (a.Stored, a.Duplicates));
        Assert.Equal((1, 1), (b.Stored, b.Duplicates));
        var stored = await Spool.ListAsync("frank");
        Assert.Equal(2, stored.Count);
        Assert.Equal("isp", stored.Single(m => m.Summary.Subject == "shared").SourceAccount);
        // A second run of either stores nothing and does not fetch again.
        Assert.Equal((0, 0), ((await Spool.PullAsync(webmail)).Stored, (await Spool.PullAsync(webmail)).Duplicates));
    }

    [Fact]
    public async Task A_dead_upstream_is_recorded_with_its_kind_streak_and_backoff_and_recovery_clears_it()
    {
        Dovecot.AddUser("flaky", "pw");
        Dovecot.DeliverRaw("flaky", TestMail.Create("waiting"));
        var account = PullHarness.Account(Dovecot, "flaky", "flaky", "pw", "gina");
        await Dovecot.StopAsync();

        var first = await Spool.PullAsync(account);
        var second = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Connect), (first.Outcome, first.ErrorKind));
        Assert.Contains(Dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture), first.Error);
        var state = await Spool.Runtime.States.GetStateAsync("flaky", CancellationToken.None);
        Assert.Equal(2, state!.FailureStreak);
        Assert.Null(state.LastSuccess);
        Assert.True(state.NextAttemptAfter > DateTimeOffset.UtcNow.AddSeconds(45), "second failure backs off 2 x base");

        // A scheduled run (not forced) during the backoff is skipped and says why.
        var scheduled = await Spool.Runtime.Engine.RunAsync(account, new PullRunRequest(), CancellationToken.None);
        Assert.Equal(RunOutcome.Skipped, scheduled.Outcome);
        Assert.Contains("backing off", scheduled.SkipReason);

        await Dovecot.RestartAsync();
        var recovered = await Spool.PullAsync(account);
        Assert.Equal((RunOutcome.Succeeded, 1), (recovered.Outcome, recovered.Stored));
        state = await Spool.Runtime.States.GetStateAsync("flaky", CancellationToken.None);
        Assert.Equal((0, (DateTimeOffset?)null), (state!.FailureStreak, state.NextAttemptAfter));
        Assert.NotNull(state.LastSuccess);
        var runs = await Spool.Runtime.States.RecentRunsAsync("flaky", 10, CancellationToken.None);
        Assert.Equal([RunOutcome.Succeeded, RunOutcome.Skipped, RunOutcome.Failed, RunOutcome.Failed], runs.Select(r => r.Outcome));
    }

    [Fact]
    public async Task A_wrong_password_is_an_authentication_failure_and_changes_nothing()
    {
        Dovecot.AddUser("locked", "right");
        Dovecot.DeliverRaw("locked", TestMail.Create("kept"));
        var account = PullHarness.Account(Dovecot, "locked", "locked", "wrong", "hank") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Authentication), (run.Outcome, run.ErrorKind));
        Assert.Equal(1, await UpstreamProbe.CountAsync(Dovecot, "locked", "right"));
    }

    [Fact]
    public async Task A_missing_password_secret_is_a_configuration_failure()
    {
        Dovecot.AddUser("nosecret", "pw");
        var account = PullHarness.Account(Dovecot, "nosecret", "nosecret", "pw", "ivan") with { PasswordRef = "env:CLOUDSPOOL_SECRET_TEST_NOT_SET_ANYWHERE" };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Configuration), (run.Outcome, run.ErrorKind));
        Assert.Contains("CLOUDSPOOL_SECRET_TEST_NOT_SET_ANYWHERE", run.Error);
    }

    [Theory]
    [InlineData(TlsMode.Implicit)]
    [InlineData(TlsMode.StartTls)]
    public async Task Tls_with_a_trusted_private_certificate_works(TlsMode tls)
    {
        Dovecot.AddUser("secure", "pw");
        Dovecot.DeliverRaw("secure", TestMail.Create("over tls"));
        var account = PullHarness.Account(Dovecot, "secure", "secure", "pw", "judy", tls: tls);

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 1), (run.Outcome, run.Stored));
    }

    [Fact]
    public async Task An_untrusted_certificate_is_refused_as_a_tls_failure()
    {
        Dovecot.AddUser("mitm", "pw");
        Dovecot.DeliverRaw("mitm", TestMail.Create("secret"));
        var account = PullHarness.Account(Dovecot, "mitm", "mitm", "pw", "kim", tls: TlsMode.Implicit) with { TrustedCertificateFile = null };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Tls), (run.Outcome, run.ErrorKind));
        Assert.Empty(await Spool.ListAsync("kim"));
    }

    [Fact]
    public async Task Two_pullers_of_one_account_never_work_at_once()
    {
        Dovecot.AddUser("busy", "pw");
        for (var i = 0; i < 40; i++)
            Dovecot.DeliverRaw("busy", TestMail.Create($"busy {i}", bodyBytes: 20_000));
        var account = PullHarness.Account(Dovecot, "busy", "busy", "pw", "lee") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        // Two engines as two workers would have: same storage, separate everything else.
        await using var other = await PullHarness.AttachAsync(Spool);
        var runs = await Task.WhenAll(Spool.PullAsync(account), other.PullAsync(account));

        Assert.Single(runs, r => r.Outcome == RunOutcome.Skipped && r.SkipReason!.Contains("another worker"));
        Assert.Equal(40, runs.Sum(r => r.Stored));
        Assert.Equal(40, (await Spool.ListAsync("lee")).Count);
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "busy", "pw"));
    }

    [Fact]
    public async Task Apop_and_sasl_are_used_when_asked_and_a_missing_apop_is_refused_clearly()
    {
        await using var apopServer = await DovecotServer.StartAsync("auth_mechanisms = plain login apop");
        apopServer.AddUser("apop", "pw");
        apopServer.DeliverRaw("apop", TestMail.Create("by apop"));
        Dovecot.AddUser("plain", "pw");
        Dovecot.DeliverRaw("plain", TestMail.Create("by sasl plain"));

        var apop = await Spool.PullAsync(PullHarness.Account(apopServer, "apop", "apop", "pw", "wanda") with { AuthMechanism = "APOP" });
        var sasl = await Spool.PullAsync(PullHarness.Account(Dovecot, "plain", "plain", "pw", "wanda") with { AuthMechanism = "PLAIN" });
        var noApop = await Spool.PullAsync(PullHarness.Account(Dovecot, "noapop", "plain", "pw", "wanda") with { AuthMechanism = "APOP" });

        Assert.Equal((RunOutcome.Succeeded, 1), (apop.Outcome, apop.Stored));
        Assert.Equal((RunOutcome.Succeeded, 1), (sasl.Outcome, sasl.Stored));
        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Authentication), (noApop.Outcome, noApop.ErrorKind));
        Assert.Contains("APOP", noApop.Error);
    }

    [Fact]
    public async Task Long_imports_report_progress()
    {
        Dovecot.AddUser("progress", "pw");
        for (var i = 0; i < 6; i++)
            Dovecot.DeliverRaw("progress", TestMail.Create($"progress {i}"));
        var account = PullHarness.Account(Dovecot, "progress", "progress", "pw", "xena");
        var reports = new List<PullProgress>();
        var engine = Spool.EngineWith(TimeProvider.System, o => o with { ProgressInterval = TimeSpan.Zero });

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
        Dovecot.AddUser("odd", "pw");
        Dovecot.DeliverRaw("odd", []);
        Dovecot.DeliverRaw("odd", [0, 1, 2, 0xFF, 0xFE, (byte)'\r', (byte)'\n', 0, 0x80]);
        Dovecot.DeliverRaw("odd", TestMail.Create("normal"));
        var upstream = await UpstreamProbe.FetchAllAsync(Dovecot, "odd", "pw");
        var account = PullHarness.Account(Dovecot, "odd", "odd", "pw", "zoe") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 3, 0), (run.Outcome, run.Stored, run.FailedMessages));
        var stored = await Spool.ListAsync("zoe");
        Assert.Equal(2, stored.Count(m => m.Summary.Malformed && !string.IsNullOrEmpty(m.Summary.ParseError)));
        foreach (var m in stored)
            Assert.Equal(upstream[m.SourceKey], await Spool.ReadRawAsync(m));
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "odd", "pw"));
    }

    [Fact]
    public async Task A_message_over_the_size_limit_stays_upstream_and_is_reported()
    {
        Dovecot.AddUser("huge", "pw");
        Dovecot.DeliverRaw("huge", TestMail.Create("too big", bodyBytes: 300_000));
        Dovecot.DeliverRaw("huge", TestMail.Create("fine"));
        var account = PullHarness.Account(Dovecot, "huge", "huge", "pw", "abe") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        var engine = Spool.EngineWith(TimeProvider.System, o => o with { MaxMessageBytes = 100_000 });

        var run = await engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((RunOutcome.Succeeded, 1, 1), (run.Outcome, run.Stored, run.FailedMessages));
        Assert.Contains("larger than the limit", Assert.Single(await Spool.Runtime.Ledger.ListMessageFailuresAsync("huge", CancellationToken.None)).Error);
        Assert.Equal(1, await UpstreamProbe.CountAsync(Dovecot, "huge", "pw"));
    }
}
