using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;
using CloudSpool.Upstream;
using CloudSpool.Upstream.Pop3;
using Xunit.Abstractions;

namespace CloudSpool.IntegrationTests;

/// <summary>CloudSpool's own POP3 client (<see cref="Pop3StreamingSession"/>) against a real Dovecot, MailKit as the oracle.</summary>
public sealed class Pop3StreamingTests : IAsyncLifetime
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);
    private readonly CancellationTokenSource _cts = new(TestTimeout);
    private DovecotServer _dovecot = null!;

    private CancellationToken Ct => _cts.Token;

    public async Task InitializeAsync() => _dovecot = await DovecotServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _dovecot.DisposeAsync();
        _cts.Dispose();
    }

    [Fact]
    public async Task Retr_of_the_corpus_is_byte_exact_against_mailkit_with_pipelining()
    {
        _dovecot.AddUser("corpus", "pw");
        foreach (var file in TestMail.CorpusFiles())
            _dovecot.DeliverRaw("corpus", await File.ReadAllBytesAsync(file, Ct));
        // 8-bit and NUL bytes, lines that need stuffing, a bare CR: whatever Dovecot sends, both clients must see the same.
        _dovecot.DeliverRaw("corpus", [.. TestMail.Create("odd bytes"), .. "..starts with dots\r\n.\r\nnul \0 here, 8-bit \xe9\xff, bare \r cr\r\n"u8]);
        var oracle = await UpstreamProbe.FetchAllAsync(_dovecot, "corpus", "pw");

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, "corpus", "corpus", "pw", "alice"));
        var listing = await session.OpenScopeAsync("", Ct);
        session.PlanFetches(listing.Messages);
        var fetched = new Dictionary<string, byte[]>();
        var sizeMismatches = new List<string>();
        foreach (var message in listing.Messages)
        {
            using var copy = new MemoryStream();
            await session.FetchAsync(message, copy, Ct);
            fetched[message.Key] = copy.ToArray();
            // Dovecot quirk: a message whose last line has no line break is sent with CRLF added (the terminating "."
            // must start a line) while LIST reports the size without it (4 corpus files: body.1.txt, bounce.txt, ...).
            var addedLineEnd = copy.Length == message.Size + 2 && copy.ToArray().AsSpan().EndsWith("\r\n"u8);
            if (message.Size != copy.Length && !addedLineEnd)
                sizeMismatches.Add($"{message.Key}: LIST {message.Size}, RETR {copy.Length}");
        }
        Assert.Empty(sizeMismatches);

        Assert.True(session.Capabilities.Pipelining, "Dovecot offers PIPELINING");
        Assert.True(session.PeakOutstanding > 1, "RETR commands were sent ahead");
        Assert.Equal(oracle.Keys.Order(), fetched.Keys.Order());
        foreach (var (key, bytes) in oracle)
            Assert.Equal(bytes, fetched[key]);
        Assert.Equal(new UpstreamMailboxStatus(oracle.Count, listing.Messages.Sum(m => m.Size)), session.Status); // from LIST
        await session.CommitAsync(Ct);
    }

    [Fact]
    public async Task Fetches_that_leave_the_plan_still_get_the_right_bytes()
    {
        _dovecot.AddUser("offplan", "pw");
        for (var i = 0; i < 6; i++)
            _dovecot.DeliverRaw("offplan", TestMail.Create($"offplan {i}", bodyBytes: 2_000 + i));
        var oracle = await UpstreamProbe.FetchAllAsync(_dovecot, "offplan", "pw");

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, "offplan", "offplan", "pw", "bob"));
        var messages = (await session.OpenScopeAsync("", Ct)).Messages;
        session.PlanFetches(messages.Take(5).ToList());

        // Skips planned messages 2 and 3, goes back to 2 (no longer planned), then fetches one never planned.
        foreach (var index in new[] { 0, 3, 1, 5, 4 })
        {
            using var copy = new MemoryStream();
            await session.FetchAsync(messages[index], copy, Ct);
            Assert.Equal(oracle[messages[index].Key], copy.ToArray());
        }
        await session.CommitAsync(Ct);
        Assert.Equal(6, await UpstreamProbe.CountAsync(_dovecot, "offplan", "pw"));
    }

    [Fact]
    public async Task Two_hundred_messages_fetched_and_deleted_in_one_pipelined_session_are_gone_after_quit()
    {
        _dovecot.AddUser("many", "pw");
        for (var i = 0; i < 200; i++)
            _dovecot.DeliverRaw("many", TestMail.Create($"many {i}", bodyBytes: 300 + i * 7));
        var oracle = await UpstreamProbe.FetchAllAsync(_dovecot, "many", "pw");

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, "many", "many", "pw", "carol"));
        var messages = (await session.OpenScopeAsync("", Ct)).Messages;
        session.PlanFetches(messages);
        foreach (var message in messages)
        {
            using var copy = new MemoryStream();
            await session.FetchAsync(message, copy, Ct);
            Assert.Equal(oracle[message.Key], copy.ToArray());
            // As the pull engine does: marked once stored, while the next RETRs are already in flight.
            await session.MarkDeletedAsync(message, Ct);
        }
        Assert.Equal(200, await UpstreamProbe.CountAsync(_dovecot, "many", "pw")); // nothing applies before QUIT

        await session.CommitAsync(Ct);

        Assert.InRange(session.PeakOutstanding, Pop3StreamingSession.MaxLookaheadCommands, Pop3StreamingSession.MaxOutstanding);
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "many", "pw"));
    }

    [Fact]
    public async Task Many_deletions_in_a_row_stay_within_the_in_flight_limit_and_apply_at_quit()
    {
        _dovecot.AddUser("dele", "pw");
        for (var i = 0; i < 150; i++)
            _dovecot.DeliverRaw("dele", TestMail.Create($"dele {i}"));

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, "dele", "dele", "pw", "dora"));
        var messages = (await session.OpenScopeAsync("", Ct)).Messages;
        foreach (var message in messages.Skip(10))
            await session.MarkDeletedAsync(message, Ct);
        session.PlanFetches(messages.Take(10).ToList());
        foreach (var message in messages.Take(10))
            await session.FetchAsync(message, Stream.Null, Ct);
        await session.CommitAsync(Ct);

        Assert.Equal(Pop3StreamingSession.MaxOutstanding, session.PeakOutstanding);
        Assert.Equal(10, await UpstreamProbe.CountAsync(_dovecot, "dele", "pw"));
    }

    [Fact]
    public async Task A_session_disposed_without_quit_deletes_nothing()
    {
        _dovecot.AddUser("nokill", "pw");
        for (var i = 0; i < 20; i++)
            _dovecot.DeliverRaw("nokill", TestMail.Create($"keep {i}"));

        await using (var session = await ConnectAsync(PullHarness.Account(_dovecot, "nokill", "nokill", "pw", "erin")))
        {
            var messages = (await session.OpenScopeAsync("", Ct)).Messages;
            session.PlanFetches(messages);
            foreach (var message in messages)
            {
                await session.FetchAsync(message, Stream.Null, Ct);
                await session.MarkDeletedAsync(message, Ct);
            }
        }

        Assert.Equal(20, await UpstreamProbe.CountAsync(_dovecot, "nokill", "pw"));
    }

    [Fact]
    public async Task A_refused_retr_is_a_message_failure_and_the_pipelined_session_goes_on()
    {
        _dovecot.AddUser("refuse", "pw");
        _dovecot.DeliverRaw("refuse", TestMail.Create("before"));
        _dovecot.DeliverUnreadable("refuse", TestMail.Create("unreadable"));
        _dovecot.DeliverRaw("refuse", TestMail.Create("after"));

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, "refuse", "refuse", "pw", "fay"));
        var messages = (await session.OpenScopeAsync("", Ct)).Messages;
        Assert.Equal(3, messages.Count);
        session.PlanFetches(messages);

        using var first = new MemoryStream();
        await session.FetchAsync(messages[0], first, Ct);
        using var refused = new MemoryStream();
        var failure = await Assert.ThrowsAsync<UpstreamMessageException>(() => session.FetchAsync(messages[1], refused, Ct));
        using var third = new MemoryStream();
        await session.FetchAsync(messages[2], third, Ct);
        await session.MarkDeletedAsync(messages[2], Ct);
        await session.CommitAsync(Ct);

        Assert.Contains("Subject: before", Encoding.ASCII.GetString(first.ToArray()));
        Assert.Contains("RETR", failure.Message);
        Assert.Contains("-ERR", failure.Message); // the server's own words, e.g. "-ERR Message 2 expunged."
        Assert.Equal(0, refused.Length);
        Assert.Contains("Subject: after", Encoding.ASCII.GetString(third.ToArray()));
        Assert.Equal(2, await UpstreamProbe.CountAsync(_dovecot, "refuse", "pw"));
    }

    [Theory]
    [InlineData("USER", "PLAIN")] // Dovecot logs USER/PASS as PLAIN
    [InlineData("PLAIN", "PLAIN")]
    [InlineData("LOGIN", "LOGIN")]
    public async Task Login_uses_the_configured_mechanism(string mechanism, string logged)
    {
        var user = "by" + mechanism.ToLowerInvariant();
        _dovecot.AddUser(user, "pw");
        _dovecot.DeliverRaw(user, TestMail.Create("hello"));

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, user, user, "pw", "gina") with { AuthMechanism = mechanism });
        Assert.Single((await session.OpenScopeAsync("", Ct)).Messages);
        await session.CommitAsync(Ct);

        Assert.Contains($"user=<{user}>, method={logged}", await LogLineAsync(_dovecot, $"user=<{user}>"));
    }

    [Fact]
    public async Task Without_a_configured_mechanism_the_strongest_offered_is_used_and_apop_works()
    {
        await using var strong = await DovecotServer.StartAsync("auth_mechanisms = plain login apop cram-md5 scram-sha-1 scram-sha-256");
        strong.AddUser("strong", "pw");
        strong.DeliverRaw("strong", TestMail.Create("strongest"));

        await using (var session = await ConnectAsync(PullHarness.Account(strong, "strong", "strong", "pw", "hank")))
        {
            Assert.Single((await session.OpenScopeAsync("", Ct)).Messages);
            await session.CommitAsync(Ct);
        }
        Assert.Contains("method=SCRAM-SHA-256", await LogLineAsync(strong, "user=<strong>"));

        strong.AddUser("apop", "pw");
        await using (var apop = await ConnectAsync(PullHarness.Account(strong, "apop", "apop", "pw", "hank") with { AuthMechanism = "APOP" }))
            await apop.CommitAsync(Ct);
        Assert.Contains("method=APOP", await LogLineAsync(strong, "user=<apop>"));

        strong.AddUser("crammed", "pw");
        await using (var cram = await ConnectAsync(PullHarness.Account(strong, "crammed", "crammed", "pw", "hank") with { AuthMechanism = "cram-md5" }))
            await cram.CommitAsync(Ct);
        Assert.Contains("method=CRAM-MD5", await LogLineAsync(strong, "user=<crammed>"));
    }

    [Fact]
    public async Task Apop_is_refused_clearly_when_the_greeting_has_no_timestamp()
    {
        _dovecot.AddUser("noapop", "pw");

        var error = await ConnectFailsAsync(PullHarness.Account(_dovecot, "noapop", "noapop", "pw", "ivan") with { AuthMechanism = "APOP" });

        Assert.Equal(UpstreamErrorKind.Authentication, error.Kind);
        Assert.Contains("APOP", error.Message);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("USER")]
    [InlineData("PLAIN")]
    public async Task A_wrong_password_is_an_authentication_failure_at_once(string? mechanism)
    {
        _dovecot.AddUser("wrong", "right");
        var clock = Stopwatch.StartNew();

        var error = await ConnectFailsAsync(PullHarness.Account(_dovecot, "wrong", "wrong", "nope", "jane") with { AuthMechanism = mechanism });

        Assert.Equal(UpstreamErrorKind.Authentication, error.Kind);
        Assert.Contains("[AUTH]", error.Message); // Dovecot's RFC 3206 response code, which ends the attempts
        Assert.Contains(_dovecot.Host, error.Message);
        // One failed attempt: Dovecot adds 5 s before answering each further failure on the same connection.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
    }

    [Theory]
    [InlineData(TlsMode.StartTls)]
    [InlineData(TlsMode.Implicit)]
    public async Task Tls_with_the_trusted_private_certificate_works(TlsMode tls)
    {
        _dovecot.AddUser("tls", "pw");
        _dovecot.DeliverRaw("tls", TestMail.Create("secret"));
        var oracle = await UpstreamProbe.FetchAllAsync(_dovecot, "tls", "pw");

        await using var session = await ConnectAsync(PullHarness.Account(_dovecot, "tls", "tls", "pw", "kim", tls: tls));
        var message = Assert.Single((await session.OpenScopeAsync("", Ct)).Messages);
        using var copy = new MemoryStream();
        await session.FetchAsync(message, copy, Ct);
        await session.CommitAsync(Ct);

        Assert.True(session.IsSecure);
        Assert.Equal(oracle[message.Key], copy.ToArray());
        // Capabilities were read again over TLS: STLS is no longer offered there.
        Assert.False(session.Capabilities.Stls);
    }

    [Theory]
    [InlineData(TlsMode.StartTls)]
    [InlineData(TlsMode.Implicit)]
    public async Task An_untrusted_certificate_is_a_tls_failure(TlsMode tls)
    {
        _dovecot.AddUser("mitm", "pw");

        var error = await ConnectFailsAsync(PullHarness.Account(_dovecot, "mitm", "mitm", "pw", "lee", tls: tls) with { TrustedCertificateFile = null });

        Assert.Equal(UpstreamErrorKind.Tls, error.Kind);
        Assert.Contains($"{_dovecot.Host}:", error.Message);
    }

    [Fact]
    public async Task A_closed_port_is_a_connect_failure_naming_host_and_port()
    {
        var account = PullHarness.Account(_dovecot, "closed", "closed", "pw", "mo");
        await _dovecot.StopAsync();

        var error = await ConnectFailsAsync(account);

        Assert.Equal(UpstreamErrorKind.Connect, error.Kind);
        Assert.Contains($"{_dovecot.Host}:{_dovecot.Pop3Port}", error.Message);
    }

    private async Task<Pop3StreamingSession> ConnectAsync(AccountDefinition account) =>
        (Pop3StreamingSession)await new UpstreamConnector { TimeoutMilliseconds = 15_000 }.ConnectAsync(account, Password(account), Ct);

    private async Task<UpstreamException> ConnectFailsAsync(AccountDefinition account) =>
        await Assert.ThrowsAsync<UpstreamException>(() => new UpstreamConnector { TimeoutMilliseconds = 15_000 }.ConnectAsync(account, Password(account), Ct));

    private static string Password(AccountDefinition account) =>
        Environment.GetEnvironmentVariable(account.PasswordRef["env:".Length..]) ?? throw new InvalidOperationException("no password");

    /// <summary>Dovecot's login line for a user (its log process writes it shortly after the login).</summary>
    private static async Task<string> LogLineAsync(DovecotServer server, string marker)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var line = server.ReadLog().Split('\n').FirstOrDefault(l => l.Contains("Login: ", StringComparison.Ordinal) && l.Contains(marker, StringComparison.Ordinal));
            if (line is not null)
                return line;
            await Task.Delay(100);
        }
        throw new Xunit.Sdk.XunitException($"no login line with {marker} in the Dovecot log:\n{server.ReadLog()}");
    }
}

/// <summary>The POP3 client against a scripted server: the corners a real server rarely shows.</summary>
public sealed class Pop3ScriptedServerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);
    /// <summary>What SASL PLAIN sends for user "u", password "pw" (RFC 4616: authzid NUL authcid NUL passwd, base64).</summary>
    private static readonly string PlainResponse = Convert.ToBase64String("\0u\0pw"u8);
    private static readonly byte[][] Three = [TestMail.Create("one"), TestMail.Create("two", bodyBytes: 3_000), TestMail.Create("three")];

    [Fact]
    public async Task Stls_that_is_not_offered_is_a_tls_failure()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "USER\r\nUIDL\r\n"));

        var error = await Assert.ThrowsAsync<UpstreamException>(() => ConnectAsync(server, TlsMode.StartTls));

        Assert.Equal(UpstreamErrorKind.Tls, error.Kind);
        Assert.Contains("STLS", error.Message);
        Assert.DoesNotContain("USER", server.Received.Select(c => c.Split(' ')[0])); // no credentials in plain text
    }

    [Fact]
    public async Task Stls_refused_by_the_server_is_a_tls_failure()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "STLS\r\nUSER\r\n",
            overrides: c => c == "STLS" ? "-ERR not today\r\n" : null));

        var error = await Assert.ThrowsAsync<UpstreamException>(() => ConnectAsync(server, TlsMode.StartTls));

        Assert.Equal(UpstreamErrorKind.Tls, error.Kind);
        Assert.Contains("not today", error.Message);
    }

    [Fact]
    public async Task Bytes_injected_after_the_stls_reply_are_refused()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "STLS\r\nUSER\r\n",
            overrides: c => c == "STLS" ? "+OK begin TLS\r\n+OK injected\r\n" : null));

        var error = await Assert.ThrowsAsync<UpstreamException>(() => ConnectAsync(server, TlsMode.StartTls));

        Assert.Equal(UpstreamErrorKind.Protocol, error.Kind);
        Assert.Contains("after its STLS reply", error.Message);
    }

    [Fact]
    public async Task A_greeting_with_err_is_a_connect_failure()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three), greeting: "-ERR [SYS/TEMP] too busy\r\n");

        var error = await Assert.ThrowsAsync<UpstreamException>(() => ConnectAsync(server));

        Assert.Equal(UpstreamErrorKind.Connect, error.Kind);
        Assert.Contains("too busy", error.Message);
    }

    [Fact]
    public async Task Without_uidl_keys_are_the_header_hash_and_size()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "USER\r\nTOP\r\nPIPELINING\r\n",
            overrides: c => c == "UIDL" ? "-ERR no UIDL here\r\n" : null));
        await using var session = await ConnectAsync(server);

        var listing = await session.OpenScopeAsync("", default);

        var expected = Three.Select(m =>
            $"h:{Convert.ToHexStringLower(SHA256.HashData(Encoding.Latin1.GetBytes(ScriptedPop3Server.Headers(m))))[..32]}-{m.Length}");
        Assert.Equal(expected, listing.Messages.Select(m => m.Key));
    }

    [Fact]
    public async Task Neither_uidl_nor_top_is_a_protocol_failure()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "USER\r\n",
            overrides: c => c.StartsWith("UIDL", StringComparison.Ordinal) || c.StartsWith("TOP", StringComparison.Ordinal) ? "-ERR no\r\n" : null));
        await using var session = await ConnectAsync(server);

        var error = await Assert.ThrowsAsync<UpstreamException>(() => session.OpenScopeAsync("", default));

        Assert.Equal(UpstreamErrorKind.Protocol, error.Kind);
        Assert.Contains("neither UIDL nor TOP", error.Message);
    }

    [Fact]
    public async Task A_refused_dele_is_a_protocol_failure_and_no_quit_is_sent()
    {
        foreach (var pipelining in new[] { false, true })
        {
            await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: pipelining ? "USER\r\nUIDL\r\nPIPELINING\r\n" : "USER\r\nUIDL\r\n",
                overrides: c => c == "DELE 2" ? "-ERR cannot\r\n" : null));
            await using var session = await ConnectAsync(server);
            var messages = (await session.OpenScopeAsync("", default)).Messages;
            session.PlanFetches(messages);

            var error = await Assert.ThrowsAsync<UpstreamException>(async () =>
            {
                foreach (var message in messages)
                {
                    await session.FetchAsync(message, Stream.Null, default);
                    await session.MarkDeletedAsync(message, default);
                }
                await session.CommitAsync(default);
            });

            Assert.Equal(UpstreamErrorKind.Protocol, error.Kind);
            Assert.Contains("DELE", error.Message);
            Assert.Contains("cannot", error.Message);
            Assert.DoesNotContain("QUIT", server.Received);
        }
    }

    [Fact]
    public async Task A_garbled_reply_makes_the_session_unusable()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, overrides: c => c == "RETR 2" ? "HTTP/1.1 400 Bad Request\r\n" : null));
        await using var session = await ConnectAsync(server);
        var messages = (await session.OpenScopeAsync("", default)).Messages;

        await session.FetchAsync(messages[0], Stream.Null, default);
        var error = await Assert.ThrowsAsync<UpstreamException>(() => session.FetchAsync(messages[1], Stream.Null, default));
        var after = await Assert.ThrowsAsync<UpstreamException>(() => session.FetchAsync(messages[2], Stream.Null, default));

        Assert.Equal(UpstreamErrorKind.Protocol, error.Kind);
        Assert.Contains("HTTP/1.1", error.Message);
        Assert.Contains("unusable", after.Message);
    }

    [Fact]
    public async Task A_connection_cut_mid_retr_is_a_connect_failure_naming_the_message()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three,
            overrides: c => c == "RETR 2" ? "+OK\r\nFrom: half\r\n" + ScriptedPop3Server.ThenClose : null));
        await using var session = await ConnectAsync(server);
        var messages = (await session.OpenScopeAsync("", default)).Messages;
        session.PlanFetches(messages);

        await session.FetchAsync(messages[0], Stream.Null, default);
        using var partial = new MemoryStream();
        var error = await Assert.ThrowsAsync<UpstreamException>(() => session.FetchAsync(messages[1], partial, default));

        Assert.Equal(UpstreamErrorKind.Connect, error.Kind);
        Assert.Contains("lost during RETR of message u:uid2", error.Message);
    }

    [Fact]
    public async Task Messages_received_before_the_server_went_away_are_still_delivered()
    {
        // RETR 1-8 go out in one batch; the server answers five and closes with the rest unread (so the kernel resets
        // the connection): sending RETR 9 may fail, but the five replies already received must still be read.
        var twelve = Enumerable.Range(1, 12).Select(i => TestMail.Create($"message {i}")).ToArray();
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(twelve,
            overrides: c => c == "RETR 5" ? "+OK\r\n" + ScriptedPop3Server.Stuff(Encoding.Latin1.GetString(twelve[4])) + ".\r\n" + ScriptedPop3Server.ThenClose : null));
        await using var session = await ConnectAsync(server);
        var messages = (await session.OpenScopeAsync("", default)).Messages;
        session.PlanFetches(messages);

        for (var i = 0; i < 5; i++)
        {
            using var copy = new MemoryStream();
            await session.FetchAsync(messages[i], copy, default);
            Assert.Equal(twelve[i], copy.ToArray());
        }
        var error = await Assert.ThrowsAsync<UpstreamException>(() => session.FetchAsync(messages[5], Stream.Null, default));

        Assert.Equal(UpstreamErrorKind.Connect, error.Kind);
        Assert.Contains("RETR of message u:uid6", error.Message);
    }

    [Fact]
    public async Task A_server_silent_mid_retr_is_a_timeout()
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, overrides: c => c == "RETR 2" ? "" : null));
        await using var session = await ConnectAsync(server, timeout: TimeSpan.FromMilliseconds(500));
        var messages = (await session.OpenScopeAsync("", default)).Messages;
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<UpstreamException>(() => session.FetchAsync(messages[1], Stream.Null, default));

        Assert.Equal(UpstreamErrorKind.Timeout, error.Kind);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_refusal_without_a_response_code_falls_back_to_the_next_mechanism()
    {
        var sasl = false;
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "USER\r\nUIDL\r\nSASL PLAIN\r\n", overrides: c =>
        {
            if (c == "AUTH PLAIN")
            {
                sasl = true;
                return "+ \r\n";
            }
            if (sasl)
            {
                sasl = false;
                return "-ERR no plain for you\r\n";
            }
            return null;
        }));

        await using var session = await ConnectAsync(server);

        Assert.Equal(["CAPA", "AUTH PLAIN", PlainResponse, "USER u", "PASS pw", "CAPA"], server.Received);
    }

    [Theory]
    [InlineData("-ERR [AUTH] bad password\r\n", UpstreamErrorKind.Authentication)]
    [InlineData("-ERR [IN-USE] mailbox locked\r\n", UpstreamErrorKind.Protocol)]
    [InlineData("-ERR [SYS/TEMP] try later\r\n", UpstreamErrorKind.Protocol)]
    public async Task A_refusal_with_a_response_code_is_final(string refusal, UpstreamErrorKind kind)
    {
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(Three, capabilities: "USER\r\nRESP-CODES\r\nSASL PLAIN LOGIN\r\n",
            overrides: c => c.StartsWith("AUTH", StringComparison.Ordinal) ? "+ \r\n" : c == PlainResponse ? refusal : null));

        var error = await Assert.ThrowsAsync<UpstreamException>(() => ConnectAsync(server));

        Assert.Equal(kind, error.Kind);
        Assert.Equal(["CAPA", "AUTH PLAIN", PlainResponse], server.Received);
    }

    private static async Task<Pop3StreamingSession> ConnectAsync(ScriptedPop3Server server, TlsMode tls = TlsMode.None, TimeSpan? timeout = null)
    {
        var account = new AccountDefinition
        {
            Name = "scripted",
            Host = "127.0.0.1",
            Port = server.Port,
            Tls = tls,
            Username = "u",
            PasswordRef = "env:UNUSED",
            Mailbox = "m",
        };
        return await Pop3StreamingSession.ConnectAsync(account, "pw", timeout ?? Timeout, CancellationToken.None);
    }
}

/// <summary>Tests that measure the process's managed memory: they run alone, after every parallel test.</summary>
[CollectionDefinition(nameof(MemoryMeasurementCollection), DisableParallelization = true)]
public sealed class MemoryMeasurementCollection;

/// <summary>Issue 2: "a 50 MB message never sits whole in memory", through CloudSpool's own POP3 client.</summary>
[Collection(nameof(MemoryMeasurementCollection))]
public sealed class Pop3MemoryTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int MessageBytes = 50 << 20;
    private static readonly Lazy<byte[]> Huge = new(CreateHuge);
    private DovecotServer _dovecot = null!;

    public async Task InitializeAsync()
    {
        _dovecot = await DovecotServer.StartAsync();
        _dovecot.AddUser("huge", "pw");
        _dovecot.DeliverRaw("huge", TestMail.Create("small first"));
        _dovecot.DeliverRaw("huge", Huge.Value);
    }

    public async Task DisposeAsync() => await _dovecot.DisposeAsync();

    [Fact]
    public async Task Fetching_a_50_MB_message_allocates_a_few_megabytes_at_most()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var account = PullHarness.Account(_dovecot, "huge", "huge", "pw", "nina");
        await using var session = (Pop3StreamingSession)await new UpstreamConnector { TimeoutMilliseconds = 30_000 }.ConnectAsync(account, "pw", cts.Token);
        var messages = (await session.OpenScopeAsync("", cts.Token)).Messages;
        session.PlanFetches(messages);
        await session.FetchAsync(messages[0], Stream.Null, cts.Token); // warms up the paths (JIT, timers, pools)
        using var sink = new HashingSink();

        var before = GC.GetTotalAllocatedBytes(precise: true);
        await session.FetchAsync(messages[1], sink, cts.Token);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        await session.CommitAsync(cts.Token);

        output.WriteLine($"fetching {sink.Length} bytes allocated {allocated} bytes of managed memory (whole process)");
        Assert.Equal(Huge.Value.Length, sink.Length);
        Assert.Equal(SHA256.HashData(Huge.Value), sink.Hash());
        Assert.True(allocated < 8 << 20, $"fetching a {MessageBytes >> 20} MB message allocated {allocated} bytes");
    }

    [Fact]
    public async Task A_50_MB_message_pulled_end_to_end_is_stored_byte_exact_and_the_heap_stays_below_its_size()
    {
        await using var spool = await PullHarness.StartAsync();
        var account = PullHarness.Account(_dovecot, "huge", "huge", "pw", "nina");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var baseline = GC.GetTotalMemory(forceFullCollection: true);
        long peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, GC.GetTotalMemory(forceFullCollection: false));
                await Task.Delay(5);
            }
        });
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);

        var run = await spool.PullAsync(account);

        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
        await stop.CancelAsync();
        await sampler;
        output.WriteLine($"heap before {baseline >> 20} MB, peak while pulling {peak >> 20} MB; {allocated >> 20} MB allocated in all (storage included)");
        Assert.Equal((RunOutcome.Succeeded, 2), (run.Outcome, run.Stored));
        var stored = (await spool.ListAsync("nina")).Single(m => m.RawLength == Huge.Value.Length);
        await using (var raw = await spool.Runtime.SpoolReader.OpenRawAsync(stored, CancellationToken.None))
            Assert.Equal(SHA256.HashData(Huge.Value), await SHA256.HashDataAsync(raw));
        Assert.True(peak - baseline < MessageBytes, $"the managed heap grew by {(peak - baseline) >> 20} MB while pulling a {MessageBytes >> 20} MB message");
    }

    /// <summary>Text lines with 8-bit bytes, some starting with "." (stuffed on the wire), CRLF throughout.</summary>
    private static byte[] CreateHuge()
    {
        var head = TestMail.Create("fifty megabytes", bodyBytes: 0);
        var result = new byte[MessageBytes];
        head.CopyTo(result, 0);
        var position = head.Length;
        for (var line = 0; position < MessageBytes; line++)
        {
            var length = Math.Min(78, MessageBytes - position);
            var span = result.AsSpan(position, length);
            span.Fill((byte)('a' + line % 26));
            if (line % 97 == 0)
                span[0] = (byte)'.';
            if (line % 13 == 0 && length > 10)
                span[5] = 0xE9;
            span[^2] = (byte)'\r';
            span[^1] = (byte)'\n';
            position += length;
        }
        return result;
    }

    private sealed class HashingSink : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private long _length;

        public byte[] Hash() => _hash.GetCurrentHash();

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            _hash.AppendData(buffer);
            _length += buffer.Length;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _hash.Dispose();
            base.Dispose(disposing);
        }
    }
}
