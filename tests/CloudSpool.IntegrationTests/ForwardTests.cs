using System.Text;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;
using CloudSpool.Upstream;
using Microsoft.Extensions.Logging.Abstractions;
using MimeKit;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The forward job against a real Azurite, a real Dovecot feeding the spool, and a real SMTP server process (aiosmtpd)
/// recording what it receives.
/// </summary>
public sealed class ForwardTests : DovecotAndSpoolTest, IAsyncLifetime
{
    private const string Phone = "phone@carrier.test";
    private const string Mailbox = "fwd";
    private SmtpSinkServer _smtp = null!;

    private AccountDefinition _account = null!;

    public new async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _smtp = await SmtpSinkServer.StartAsync();
        Dovecot.AddUser("fwduser", "pw");
        _account = PullHarness.Account(Dovecot, "isp", "fwduser", "pw", Mailbox);
    }

    public new async Task DisposeAsync()
    {
        await _smtp.DisposeAsync();
        await base.DisposeAsync();
    }

    private ForwardOptions Options(Action<ForwardOptions>? configure = null)
    {
        var options = new ForwardOptions
        {
            Mailbox = Mailbox,
            Sender = "cloudspool@home.test",
            Destinations = [new ForwardDestination { Address = Phone, MaxBytes = 100 * 1024 }],
            Smtp = new SmtpRelayOptions { Host = "127.0.0.1", Port = _smtp.Port, Security = SmtpSecurity.None, Timeout = TimeSpan.FromSeconds(15) },
            BaseBackoff = TimeSpan.FromSeconds(1),
            MaxBackoff = TimeSpan.FromSeconds(2),
            LeaseDuration = TimeSpan.FromSeconds(15),
        };
        configure?.Invoke(options);
        return options;
    }

    private (ForwardRunner Runner, AzureForwardStore Store) Runner(ForwardOptions? options = null)
    {
        options ??= Options();
        var smtp = options.Smtp;
        var storage = Spool.Runtime.Storage;
        var store = new AzureForwardStore(storage, TimeProvider.System);
        var transport = new SmtpForwardTransport(smtp, () => smtp.Password is null ? null : Spool.Runtime.Secrets.Resolve(smtp.Password));
        var runner = new ForwardRunner(options, Spool.Runtime.SpoolReader, store, store, transport,
            new BlobLeaseManager(storage, NullLogger<BlobLeaseManager>.Instance) { Duration = TimeSpan.FromSeconds(15) },
            Spool.Runtime.JobRuns, TimeProvider.System, NullLogger<ForwardRunner>.Instance)
        {
            TempDirectory = Spool.TempDirectory,
            StaleSending = TimeSpan.FromSeconds(30),
        };
        return (runner, store);
    }

    private async Task DeliverAndPullAsync(params byte[][] messages)
    {
        foreach (var raw in messages)
            Dovecot.DeliverRaw("fwduser", raw);
        var run = await Spool.PullAsync(_account);
        Assert.Equal((RunOutcome.Succeeded, messages.Length), (run.Outcome, run.Stored));
    }

    private static byte[] Bytes(MimeMessage message)
    {
        using var stream = new MemoryStream();
        message.WriteTo(ForwardTrimmer.WireFormat, stream);
        return stream.ToArray();
    }

    private static byte[] WithAttachments(string subject)
    {
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("印刷所", "print@shop.test"));
        message.To.Add(MailboxAddress.Parse("alice@home.test"));
        message.Subject = subject;
        message.Date = new DateTimeOffset(2026, 11, 28, 9, 0, 0, TimeSpan.FromHours(9));
        var text = new TextPart("plain");
        text.SetText(Encoding.GetEncoding("iso-2022-jp"), "校正刷りを添付します。三ページ目をご確認ください。");
        var mixed = new Multipart("mixed") { text };
        foreach (var (name, type, size) in new[] { ("proof.pdf", "application/pdf", 3 << 20), ("photo.jpg", "image/jpeg", 1 << 20) })
        {
            var data = new byte[size];
            Random.Shared.NextBytes(data);
            mixed.Add(new MimePart(type)
            {
                ContentDisposition = new ContentDisposition(ContentDisposition.Attachment),
                FileName = name,
                Content = new MimeContent(new MemoryStream(data)),
                ContentTransferEncoding = ContentEncoding.Base64,
            });
        }
        message.Body = mixed;
        return Bytes(message);
    }

    [Fact]
    public async Task The_backlog_is_never_forwarded_and_new_mail_arrives_trimmed_once()
    {
        await DeliverAndPullAsync(TestMail.Create("old one"), TestMail.Create("old two"));
        var (runner, _) = Runner();
        var off = await runner.RunAsync(CancellationToken.None);
        Assert.Equal("forwarding is off", off.Summary);

        await runner.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync(WithAttachments("校正刷り"));
        var run = await runner.RunAsync(CancellationToken.None);

        Assert.Equal(RunOutcome.Succeeded, run.Outcome);
        Assert.StartsWith("1 sent, 0 skipped", run.Summary, StringComparison.Ordinal);
        var (copy, size) = Assert.Single(_smtp.Received());
        Assert.True(size <= 100 * 1024, $"{size} bytes");
        Assert.Equal("校正刷り", copy.Subject);
        Assert.Equal("印刷所" + ForwardTrimmer.ViaSuffix, copy.From.Mailboxes.Single().Name);
        Assert.Equal("print@shop.test", copy.ReplyTo.Mailboxes.Single().Address);
        Assert.Empty(copy.Attachments);
        Assert.Contains("校正刷りを添付します。", copy.TextBody, StringComparison.Ordinal);
        Assert.Contains("- proof.pdf (application/pdf, 3 MB)", copy.TextBody, StringComparison.Ordinal);
        Assert.Contains("- photo.jpg (image/jpeg, 1 MB)", copy.TextBody, StringComparison.Ordinal);
        Assert.NotNull(copy.Headers[ForwardTrimmer.LoopHeader]);

        var again = await runner.RunAsync(CancellationToken.None);
        Assert.StartsWith("0 sent, 0 skipped, 0 refused, 0 waiting", again.Summary, StringComparison.Ordinal);
        Assert.Single(_smtp.Received());

        var messages = await Spool.ListAsync(Mailbox);
        Assert.Contains("already in the mailbox when forwarding was switched on", Assert.Single(await runner.ExplainAsync(messages[0], CancellationToken.None)), StringComparison.Ordinal);
        Assert.StartsWith($"{Phone}: sent at ", Assert.Single(await runner.ExplainAsync(messages[2], CancellationToken.None)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_cursor_passes_settled_mail_older_than_the_lag_and_never_young_mail()
    {
        var (runner, store) = Runner();
        await runner.SwitchOnAsync(null, CancellationToken.None); // empty mailbox: no watermark
        Dovecot.DeliverRaw("fwduser", TestMail.Create("old a"));
        Dovecot.DeliverRaw("fwduser", TestMail.Create("old b"));
        var engine = Spool.EngineWith(new ManualClock(DateTimeOffset.UtcNow - TimeSpan.FromHours(1)));
        Assert.Equal(2, (await engine.RunAsync(_account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None)).Stored);

        Assert.StartsWith("2 sent", (await runner.RunAsync(CancellationToken.None)).Summary, StringComparison.Ordinal);
        var keys = (await Spool.ListAsync(Mailbox)).Select(m => m.MessageKey).ToList();
        Assert.Equal(keys[1], await store.GetCursorAsync(Mailbox, CancellationToken.None));

        await DeliverAndPullAsync(TestMail.Create("young"));
        Assert.StartsWith("1 sent, 0 skipped, 0 refused, 0 waiting", (await runner.RunAsync(CancellationToken.None)).Summary, StringComparison.Ordinal);
        Assert.Equal(keys[1], await store.GetCursorAsync(Mailbox, CancellationToken.None)); // younger than the lag: read again next run
        Assert.StartsWith("0 sent, 0 skipped, 0 refused, 0 waiting", (await runner.RunAsync(CancellationToken.None)).Summary, StringComparison.Ordinal);
        Assert.Equal(["old a", "old b", "young"], _smtp.Received().Select(r => r.Message.Subject).Order());
    }

    [Fact]
    public async Task Rules_skip_with_a_reason_and_bulk_mail_is_not_forwarded()
    {
        var (runner, _) = Runner(Options(o => o.Rules = [new ForwardRuleDefinition { Name = "no ads", Subject = "sale", Action = "skip" }]));
        await runner.SwitchOnAsync(null, CancellationToken.None);
        var bulk = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(TestMail.Create("newsletter")).Replace("Subject:", "Precedence: bulk\r\nSubject:", StringComparison.Ordinal));
        await DeliverAndPullAsync(TestMail.Create("big sale"), bulk, TestMail.Create("hello"));

        var run = await runner.RunAsync(CancellationToken.None);
        Assert.StartsWith("1 sent, 2 skipped", run.Summary, StringComparison.Ordinal);
        Assert.Equal("hello", Assert.Single(_smtp.Received()).Message.Subject);
        var messages = await Spool.ListAsync(Mailbox);
        Assert.Contains("rule [0] 'no ads' matched (subject ~ sale): skip", Assert.Single(await runner.ExplainAsync(messages[0], CancellationToken.None)), StringComparison.Ordinal);
        Assert.Contains("automatic or bulk mail (Precedence: bulk)", Assert.Single(await runner.ExplainAsync(messages[1], CancellationToken.None)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Switching_off_mid_run_stops_before_the_next_send()
    {
        var (runner, _) = Runner();
        await runner.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync([.. Enumerable.Range(1, 5).Select(i => TestMail.Create($"m{i}"))]);
        _smtp.SetBehaviour(rcptDelaySeconds: 1);

        var running = runner.RunAsync(CancellationToken.None);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (_smtp.Received().Count == 0 && DateTime.UtcNow < deadline)
            await Task.Delay(50);
        await runner.SwitchOffAsync("switched off", CancellationToken.None);
        var run = await running;

        Assert.Contains("stopped: forwarding was switched off during the run", run.Summary, StringComparison.Ordinal);
        var sent = _smtp.Received().Count;
        Assert.InRange(sent, 1, 2); // the one being handed over when the switch flipped may complete
        var later = await runner.RunAsync(CancellationToken.None);
        Assert.Equal("forwarding is off", later.Summary);
        Assert.Equal(sent, _smtp.Received().Count);
    }

    [Fact]
    public async Task Relay_down_then_up_is_retried_and_delivered_once()
    {
        var (runner, store) = Runner();
        await runner.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync(TestMail.Create("while the relay is down"));
        await _smtp.StopProcessAsync();

        var failed = await runner.RunAsync(CancellationToken.None);
        Assert.Equal(RunOutcome.Failed, failed.Outcome);
        Assert.Contains("connect failed", failed.Error, StringComparison.Ordinal);
        var row = Assert.Single(await store.ListAfterAsync(Mailbox, null, CancellationToken.None));
        Assert.Equal((ForwardState.Retry, 1), (row.State, row.Attempts));
        Assert.Contains("temporary failure (attempt 1), retried later", row.Reason, StringComparison.Ordinal);

        await _smtp.StartProcessAsync();
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // BaseBackoff
        var ok = await runner.RunAsync(CancellationToken.None);
        Assert.Equal(RunOutcome.Succeeded, ok.Outcome);
        Assert.StartsWith("1 sent", ok.Summary, StringComparison.Ordinal);
        await runner.RunAsync(CancellationToken.None);
        Assert.Equal("while the relay is down", Assert.Single(_smtp.Received()).Message.Subject);
        row = Assert.Single(await store.ListAfterAsync(Mailbox, null, CancellationToken.None));
        Assert.Equal((ForwardState.Sent, 2), (row.State, row.Attempts));
    }

    [Fact]
    public async Task A_message_whose_bytes_cannot_be_read_waits_with_its_reason_and_is_given_up_after_the_attempts()
    {
        var (runner, store) = Runner(Options(o => o.MaxAttempts = 2));
        await runner.SwitchOnAsync(null, CancellationToken.None);
        // Pulled one by one, so each has a blob of its own (not one pack).
        await DeliverAndPullAsync(TestMail.Create("back soon"));
        await DeliverAndPullAsync(TestMail.Create("gone for good"));
        var messages = new List<SpoolMessage>();
        await foreach (var m in Spool.Runtime.SpoolReader.ListAsync(Mailbox, null, CancellationToken.None))
            messages.Add(m);
        var blobs = Spool.Runtime.Storage.Spool;
        var saved = (await blobs.GetBlobClient(messages[0].BlobName).DownloadContentAsync()).Value.Content;
        foreach (var m in messages)
            await blobs.GetBlobClient(m.BlobName).DeleteAsync();

        var first = await runner.RunAsync(CancellationToken.None);
        Assert.Equal("0 sent, 0 skipped, 0 refused, 2 waiting", first.Summary);
        var rows = await store.ListAfterAsync(Mailbox, null, CancellationToken.None);
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal((ForwardState.Retry, 1), (r.State, r.Attempts)));
        Assert.All(rows, r => Assert.Contains("could not be read (attempt 1), retried later", r.Reason, StringComparison.Ordinal));
        var status = await CliProcess.RunAsync(ForwardEnvironment(), "forward", "status");
        Assert.Contains("could not be read", status.Stdout, StringComparison.Ordinal);

        await blobs.GetBlobClient(messages[0].BlobName).UploadAsync(saved);
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // BaseBackoff
        var second = await runner.RunAsync(CancellationToken.None);
        Assert.Equal("1 sent, 0 skipped, 1 refused, 0 waiting", second.Summary);
        Assert.Equal("back soon", Assert.Single(_smtp.Received()).Message.Subject);
        var gone = (await store.ListAfterAsync(Mailbox, null, CancellationToken.None)).Single(r => r.MessageKey == messages[1].MessageKey);
        Assert.Equal((ForwardState.Failed, 2), (gone.State, gone.Attempts));
        Assert.StartsWith("given up after 2 attempts: its stored bytes could not be read", gone.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_250_whose_record_fails_while_storage_is_down_is_recorded_when_it_answers_and_never_sent_again()
    {
        var options = Options();
        var storage = Spool.Runtime.Storage;
        var store = new AzureForwardStore(storage, TimeProvider.System);
        var flaky = new RecordFailsAfterSend(store, failures: 3);
        var runner = new ForwardRunner(options, Spool.Runtime.SpoolReader, store, flaky,
            new SmtpForwardTransport(options.Smtp, () => null),
            new BlobLeaseManager(storage, NullLogger<BlobLeaseManager>.Instance) { Duration = TimeSpan.FromSeconds(15) },
            Spool.Runtime.JobRuns, TimeProvider.System, NullLogger<ForwardRunner>.Instance)
        {
            TempDirectory = Spool.TempDirectory,
            StaleSending = TimeSpan.FromSeconds(1),
        };
        await runner.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync(TestMail.Create("accepted just before the outage"));

        var run = await runner.RunAsync(CancellationToken.None);
        Assert.StartsWith("1 sent", run.Summary, StringComparison.Ordinal);
        Assert.Equal(3, flaky.Failed);
        var row = Assert.Single(await store.ListAfterAsync(Mailbox, null, CancellationToken.None));
        Assert.Equal(ForwardState.Sent, row.State);

        // Even with 'sending' rows taken as abandoned after a second, nothing is sent again.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.StartsWith("0 sent", (await runner.RunAsync(CancellationToken.None)).Summary, StringComparison.Ordinal);
        Assert.Single(_smtp.Received());
    }

    /// <summary>The real ledger, except that recording a relay's 250 fails the first times (storage not answering).</summary>
    private sealed class RecordFailsAfterSend(IForwardLedger inner, int failures) : IForwardLedger
    {
        public int Failed { get; private set; }

        public Task<IReadOnlyList<ForwardEntry>> ListAfterAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) =>
            inner.ListAfterAsync(mailbox, afterKey, cancellationToken);

        public Task<IReadOnlyList<ForwardEntry>> ListForMessageAsync(string mailbox, string messageKey, CancellationToken cancellationToken) =>
            inner.ListForMessageAsync(mailbox, messageKey, cancellationToken);

        public Task<ForwardEntry?> TryWriteAsync(string mailbox, ForwardEntry entry, CancellationToken cancellationToken)
        {
            if (entry.State == ForwardState.Sent && Failed < failures)
            {
                Failed++;
                throw new IOException("storage is not answering");
            }
            return inner.TryWriteAsync(mailbox, entry, cancellationToken);
        }
    }

    [Fact]
    public async Task A_permanent_refusal_is_recorded_and_not_retried_and_a_temporary_one_is()
    {
        var (runner, store) = Runner(Options(o => o.Destinations.Add(new ForwardDestination { Address = "tablet@carrier.test" })));
        await runner.SwitchOnAsync(null, CancellationToken.None);
        _smtp.SetBehaviour(new Dictionary<string, string> { [Phone] = "550 5.1.1 no such mailbox", ["tablet@carrier.test"] = "451 4.3.0 try again later" });
        await DeliverAndPullAsync(TestMail.Create("refused"));

        var first = await runner.RunAsync(CancellationToken.None);
        Assert.Equal(RunOutcome.Succeeded, first.Outcome);
        Assert.StartsWith("0 sent, 0 skipped, 1 refused, 1 waiting", first.Summary, StringComparison.Ordinal);
        var rows = (await store.ListAfterAsync(Mailbox, null, CancellationToken.None)).ToDictionary(r => r.Destination);
        Assert.Equal(ForwardState.Failed, rows[Phone].State);
        Assert.Contains("refused by the relay, not retried", rows[Phone].Reason, StringComparison.Ordinal);
        Assert.Contains("550", rows[Phone].Reason, StringComparison.Ordinal);
        Assert.Equal(ForwardState.Retry, rows["tablet@carrier.test"].State);

        _smtp.SetBehaviour();
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var second = await runner.RunAsync(CancellationToken.None);
        Assert.StartsWith("1 sent", second.Summary, StringComparison.Ordinal);
        var received = Assert.Single(_smtp.Received()).Message;
        Assert.Equal("tablet@carrier.test", received.To.Mailboxes.Single().Address);
        rows = (await store.ListAfterAsync(Mailbox, null, CancellationToken.None)).ToDictionary(r => r.Destination);
        Assert.Equal((ForwardState.Failed, 1), (rows[Phone].State, rows[Phone].Attempts));
    }

    [Theory]
    [InlineData(SmtpSecurity.StartTls)]
    [InlineData(SmtpSecurity.Implicit)]
    public async Task Tls_to_the_relay_validates_its_certificate(SmtpSecurity security)
    {
        await using var tlsRelay = await SmtpSinkServer.StartAsync(security);
        void Relay(ForwardOptions o, string? trusted) => o.Smtp = new SmtpRelayOptions
        {
            Host = "127.0.0.1", Port = tlsRelay.Port, Security = security, Timeout = TimeSpan.FromSeconds(15), TrustedCertificateFile = trusted,
        };
        var (untrusting, store) = Runner(Options(o => Relay(o, null)));
        await untrusting.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync(TestMail.Create("over tls"));

        var refused = await untrusting.RunAsync(CancellationToken.None);
        Assert.Equal(RunOutcome.Failed, refused.Outcome);
        Assert.Contains("TLS failed (certificate not trusted", refused.Error, StringComparison.Ordinal);
        Assert.Empty(tlsRelay.Received());

        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var (trusting, _) = Runner(Options(o => Relay(o, tlsRelay.CertificatePemPath)));
        var ok = await trusting.RunAsync(CancellationToken.None);
        Assert.True(ok.Outcome == RunOutcome.Succeeded, ok.Error);
        Assert.Equal("over tls", Assert.Single(tlsRelay.Received()).Message.Subject);
        Assert.Equal(ForwardState.Sent, Assert.Single(await store.ListAfterAsync(Mailbox, null, CancellationToken.None)).State);
    }

    [Fact]
    public async Task Smtp_auth_logs_in_with_the_secret_reference_and_a_refused_login_is_retried()
    {
        await using var authRelay = await SmtpSinkServer.StartAsync(login: ("cloudspool", "s3cret"));
        var variable = "CLOUDSPOOL_SECRET_TEST_SMTP_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "wrong");
        var options = Options(o => o.Smtp = new SmtpRelayOptions
        {
            Host = "127.0.0.1", Port = authRelay.Port, Security = SmtpSecurity.None, Timeout = TimeSpan.FromSeconds(15), User = "cloudspool", Password = "env:" + variable,
        });
        var (runner, _) = Runner(options);
        await runner.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync(TestMail.Create("authenticated"));

        var refused = await runner.RunAsync(CancellationToken.None);
        Assert.Equal(RunOutcome.Failed, refused.Outcome);
        Assert.Contains("login failed: the relay refused the login", refused.Error, StringComparison.Ordinal);
        Assert.Empty(authRelay.Received());

        Environment.SetEnvironmentVariable(variable, "s3cret");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var ok = await runner.RunAsync(CancellationToken.None);
        Assert.True(ok.Outcome == RunOutcome.Succeeded, ok.Error);
        Assert.Equal("authenticated", Assert.Single(authRelay.Received()).Message.Subject);
    }

    [Fact]
    public async Task Until_switches_forwarding_off_by_itself()
    {
        var (runner, _) = Runner();
        await runner.SwitchOnAsync(DateTimeOffset.UtcNow.AddSeconds(1), CancellationToken.None);
        await DeliverAndPullAsync(TestMail.Create("after the end"));
        await Task.Delay(TimeSpan.FromSeconds(1.5));

        var run = await runner.RunAsync(CancellationToken.None);
        Assert.StartsWith("forwarding switched itself off at ", run.Summary, StringComparison.Ordinal);
        Assert.Empty(_smtp.Received());
        var message = Assert.Single(await Spool.ListAsync(Mailbox));
        Assert.Contains("not forwarded: forwarding is off (switched itself off at", Assert.Single(await runner.ExplainAsync(message, CancellationToken.None)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outside_the_weekly_windows_new_mail_waits()
    {
        var now = DateTime.UtcNow;
        var closed = new ForwardWindowOptions { Days = now.AddDays(2).DayOfWeek.ToString()[..3], Start = "00:00", End = "24:00" };
        var (runner, _) = Runner(Options(o => o.Windows = [closed]));
        await runner.SwitchOnAsync(null, CancellationToken.None);
        await DeliverAndPullAsync(TestMail.Create("waits"));

        var run = await runner.RunAsync(CancellationToken.None);
        Assert.Equal("outside the forwarding windows: new mail waits", run.Summary);
        Assert.Empty(_smtp.Received());
        var (open, _) = Runner(Options(o => o.Windows = [new ForwardWindowOptions { Days = now.DayOfWeek.ToString()[..3] + "," + now.AddDays(1).DayOfWeek.ToString()[..3] }]));
        Assert.StartsWith("1 sent", (await open.RunAsync(CancellationToken.None)).Summary, StringComparison.Ordinal);
    }

    private Dictionary<string, string> ForwardEnvironment(params (string Key, string Value)[] extra)
    {
        var env = Spool.CliEnvironment(
            ("CLOUDSPOOL__Forward__Mailbox", Mailbox),
            ("CLOUDSPOOL__Forward__Sender", "cloudspool@home.test"),
            ("CLOUDSPOOL__Forward__Destinations__0__Address", Phone),
            ("CLOUDSPOOL__Forward__Smtp__Host", "127.0.0.1"),
            ("CLOUDSPOOL__Forward__Smtp__Port", _smtp.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ("CLOUDSPOOL__Forward__Smtp__Security", "none"),
            ("CLOUDSPOOL__Forward__LeaseDuration", "00:00:15"));
        foreach (var (k, v) in extra)
            env[k] = v;
        return env;
    }

    [Fact]
    public async Task Kill_9_mid_delivery_then_rerun_loses_nothing_and_repeats_nothing()
    {
        var env = ForwardEnvironment();
        await DeliverAndPullAsync(TestMail.Create("backlog"));
        var on = await CliProcess.RunAsync(env, "forward", "on");
        Assert.True(on.ExitCode == 0, on.Stdout + on.Stderr);
        Assert.Contains("forwarding is on for mailbox fwd", on.Stdout, StringComparison.Ordinal);
        await DeliverAndPullAsync([.. Enumerable.Range(1, 3).Select(i => TestMail.Create($"n{i}"))]);
        _smtp.SetBehaviour(rcptDelaySeconds: 4);

        var store = new AzureForwardStore(Spool.Runtime.Storage, TimeProvider.System);
        using (var job = CliProcess.Start(env, "job", "run", "forward"))
        {
            // Kill while the second copy is claimed and being handed over (its RCPT is held by the server).
            var deadline = DateTime.UtcNow.AddSeconds(90);
            var claimed = false;
            while (!claimed && DateTime.UtcNow < deadline)
            {
                var rows = await store.ListAfterAsync(Mailbox, null, CancellationToken.None);
                claimed = rows.Count(r => r.State == ForwardState.Sent) == 1 && rows.Any(r => r.State == ForwardState.Sending);
                Assert.False(job.HasExited, job.Stdout + job.Stderr);
                if (!claimed)
                    await Task.Delay(100);
            }
            job.KillHard();
            Assert.True(claimed, "the job never reached the second hand-over");
        }
        _smtp.SetBehaviour();
        Assert.Single(_smtp.Received());

        // Reruns until everything is settled: first the dead run's lease and then its claim must age out.
        var until = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < until)
        {
            var rerun = await CliProcess.RunAsync(env, "job", "run", "forward");
            Assert.True(rerun.ExitCode == 0, rerun.Stdout + rerun.Stderr);
            var rows = await store.ListAfterAsync(Mailbox, null, CancellationToken.None);
            if (rows.Count == 3 && rows.All(r => r.State == ForwardState.Sent))
                break;
            await Task.Delay(2000);
        }
        var settled = await store.ListAfterAsync(Mailbox, null, CancellationToken.None);
        Assert.Equal([1, 1, 2], settled.Select(r => r.Attempts).Order()); // the interrupted one was sent again, once
        var received = _smtp.Received().Select(r => r.Message).ToList();
        Assert.Equal(["n1", "n2", "n3"], received.Select(m => m.Subject).Order());
        Assert.Equal(3, received.Select(m => m.MessageId).Distinct().Count());

        var status = await CliProcess.RunAsync(env, "forward", "status");
        Assert.Contains("forwarding: on", status.Stdout, StringComparison.Ordinal);
        Assert.Contains("3 sent", status.Stdout, StringComparison.Ordinal);
        var messages = await Spool.ListAsync(Mailbox);
        var show = await CliProcess.RunAsync(env, "messages", "show", "--mailbox", Mailbox, messages[0].MessageKey);
        Assert.Contains("the backlog is never forwarded", show.Stdout, StringComparison.Ordinal);
        var test = await CliProcess.RunAsync(env, "rules", "test", "--last", "2");
        Assert.True(test.ExitCode == 0, test.Stdout + test.Stderr);
        Assert.Contains("forward-trimmed: no rule matched", test.Stdout, StringComparison.Ordinal);
        Assert.Contains("2 messages judged; nothing was sent", test.Stdout, StringComparison.Ordinal);
        Assert.Equal(3, _smtp.Received().Count);
        var off = await CliProcess.RunAsync(env, "forward", "off");
        Assert.Equal(0, off.ExitCode);
    }

    [Fact]
    public async Task A_graceful_stop_while_the_relay_holds_its_250_still_records_the_copy_as_sent_and_sends_it_once()
    {
        // Found by the soak (issue 7): a worker stopped with SIGTERM during a hand-over gave up waiting for the relay's
        // reply, so the copy the relay had already stored stayed "sending" and a later run sent it a second time.
        var env = ForwardEnvironment();
        Assert.Equal(0, (await CliProcess.RunAsync(env, "forward", "on")).ExitCode);
        await DeliverAndPullAsync(TestMail.Create("held reply"));
        _smtp.SetBehaviour(dataDelaySeconds: 6);

        var store = new AzureForwardStore(Spool.Runtime.Storage, TimeProvider.System);
        using (var job = CliProcess.Start(env, "job", "run", "forward"))
        {
            // Stop it once the relay has stored the copy and holds the reply.
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (_smtp.Received().Count == 0 && DateTime.UtcNow < deadline)
            {
                Assert.False(job.HasExited, job.Stdout + job.Stderr);
                await Task.Delay(100);
            }
            Assert.Single(_smtp.Received());
            await job.TerminateAsync();
            await job.WaitAsync(TimeSpan.FromSeconds(60));
        }
        _smtp.SetBehaviour();
        var row = Assert.Single(await store.ListAfterAsync(Mailbox, null, CancellationToken.None));
        Assert.Equal(ForwardState.Sent, row.State);

        // Later runs (after the claim would have gone stale) send nothing more.
        await Task.Delay(TimeSpan.FromSeconds(31));
        Assert.Equal(0, (await CliProcess.RunAsync(env, "job", "run", "forward")).ExitCode);
        Assert.Equal("held reply", Assert.Single(_smtp.Received()).Message.Subject);
    }

    [Fact]
    public async Task The_worker_runs_the_forward_job_on_its_schedule_and_the_schedule_is_editable()
    {
        var env = ForwardEnvironment(("CLOUDSPOOL__Forward__Schedule", "*/2 * * * * ?"), ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"));
        Assert.Equal(0, (await CliProcess.RunAsync(env, "forward", "on", "--until", "2h")).ExitCode);
        await DeliverAndPullAsync(TestMail.Create("scheduled"));
        using (var worker = CliProcess.Start(env, "worker"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (_smtp.Received().Count == 0 && DateTime.UtcNow < deadline)
            {
                Assert.False(worker.HasExited, worker.Stdout + worker.Stderr);
                await Task.Delay(200);
            }
            await worker.TerminateAsync();
            await worker.WaitAsync(TimeSpan.FromSeconds(60));
        }
        Assert.Equal("scheduled", Assert.Single(_smtp.Received()).Message.Subject);

        var set = await CliProcess.RunAsync(env, "schedule", "set", "forward", "0 0 3 * * ?", "--tz", "Asia/Tokyo");
        Assert.True(set.ExitCode == 0, set.Stdout + set.Stderr);
        var list = await CliProcess.RunAsync(env, "schedule", "list");
        Assert.Contains("forward: \"0 0 3 * * ?\" Asia/Tokyo (edited)", list.Stdout, StringComparison.Ordinal);
        Assert.Matches(@"last run: \S+ \S+ Succeeded in \d+\.\d s", list.Stdout);
    }

    [Fact]
    public async Task New_mail_pulled_by_the_worker_is_forwarded_at_once_not_at_the_forward_jobs_next_fire()
    {
        // The forward job's own schedule never fires in this test: only the pull's new mail can start it.
        var env = ForwardEnvironment(("CLOUDSPOOL__Forward__Schedule", "0 0 0 1 1 ? 2099"), ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"));
        Assert.True(await Spool.Runtime.Accounts.AddAsync(_account with { Schedule = "*/2 * * * * ?" }, CancellationToken.None));
        Assert.Equal(0, (await CliProcess.RunAsync(env, "forward", "on")).ExitCode);
        using var worker = CliProcess.Start(env, "worker");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!worker.Stderr.Contains("pull:isp: scheduled", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            await Task.Delay(200);

        Dovecot.DeliverRaw("fwduser", TestMail.Create("straight to the phone"));
        var delivered = DateTime.UtcNow;
        while (_smtp.Received().Count == 0 && DateTime.UtcNow < deadline)
        {
            Assert.False(worker.HasExited, worker.Stdout + worker.Stderr);
            await Task.Delay(100);
        }
        var delay = DateTime.UtcNow - delivered;
        await worker.TerminateAsync();
        await worker.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("straight to the phone", Assert.Single(_smtp.Received()).Message.Subject);
        // Pull interval (2 s) plus seconds, with a wide margin for a loaded machine; the forward schedule is years away.
        Assert.True(delay < TimeSpan.FromSeconds(30), $"arrival to phone took {delay}");
    }

    [Fact]
    public async Task Invalid_rules_are_refused_by_config_validation_with_exit_2()
    {
        var env = ForwardEnvironment(
            ("CLOUDSPOOL__Forward__Rules__0__Name", "broken"),
            ("CLOUDSPOOL__Forward__Rules__0__Subject", "re:(unclosed"),
            ("CLOUDSPOOL__Forward__Rules__0__Action", "forward-everything"));
        var run = await CliProcess.RunAsync(env, "job", "run", "forward");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("Forward:Rules[0]:Subject: rule [0] 'broken'", run.Stderr, StringComparison.Ordinal);
        Assert.Contains("'forward-everything' is not an action", run.Stderr, StringComparison.Ordinal);
        Assert.Empty(_smtp.Received());
    }
}
