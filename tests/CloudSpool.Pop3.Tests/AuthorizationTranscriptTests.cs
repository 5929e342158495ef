using System.Text;
using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>Transcripts of the AUTHORIZATION state: greeting, CAPA, USER/PASS, APOP, AUTH PLAIN, refusals.</summary>
public sealed class AuthorizationTranscriptTests
{
    private static readonly string[] BaseCapabilities =
        ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0"];

    private static string Plain(string authzid, string user, string password) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(authzid + "\0" + user + "\0" + password));

    [Fact]
    public async Task Greeting_has_no_apop_timestamp_when_the_authenticator_cannot_verify_digests()
    {
        await using var h = await SessionHarness.StartAsync(readGreeting: false);
        Assert.Equal("+OK CloudSpool POP3 server ready", await h.Client.ReadLineAsync());
    }

    [Fact]
    public async Task Greeting_carries_a_fresh_apop_timestamp_when_the_authenticator_supports_apop()
    {
        var authenticator = new FakeAuthenticator((SessionHarness.User, SessionHarness.Password)) { SupportsApop = true };
        await using var a = await SessionHarness.StartAsync(authenticator: authenticator, readGreeting: false);
        await using var b = await SessionHarness.StartAsync(authenticator: authenticator, readGreeting: false);
        var first = await a.Client.ReadLineAsync();
        var second = await b.Client.ReadLineAsync();
        Assert.Matches(@"^\+OK CloudSpool POP3 server ready <\d+\.[0-9a-f]{16}\.\d+@pop\.test>$", first);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task Capa_before_login_on_loopback_lists_user_and_sasl_plain_without_stls()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        Assert.Equal([.. BaseCapabilities, "USER", "SASL PLAIN", "IMPLEMENTATION CloudSpool"], await h.Client.ReadLinesAsync());
    }

    [Fact]
    public async Task Capa_with_a_certificate_offers_stls()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        Assert.Equal([.. BaseCapabilities, "USER", "SASL PLAIN", "STLS", "IMPLEMENTATION CloudSpool"], await h.Client.ReadLinesAsync());
    }

    [Fact]
    public async Task Capa_from_an_untrusted_network_hides_password_logins_until_tls()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost, remote: SessionHarness.Remote);
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        Assert.Equal([.. BaseCapabilities, "STLS", "IMPLEMENTATION CloudSpool"], await h.Client.ReadLinesAsync());
    }

    [Fact]
    public async Task Capa_announces_the_configured_expire_period()
    {
        await using var h = await SessionHarness.StartAsync(o => o.ExpireDays = 30);
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        Assert.Contains("EXPIRE 30", await h.Client.ReadLinesAsync());
    }

    [Fact]
    public async Task User_and_pass_log_in_and_open_the_maildrop()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        var attempt = Assert.Single(h.Authenticator.Attempts);
        Assert.Equal(("alice", "secret", Pop3AuthMechanism.UserPass, (string?)null),
            (attempt.UserName, attempt.Password, attempt.Mechanism, attempt.AuthorizationIdentity));
        Assert.False(attempt.Connection.IsSecure);
        Assert.Equal(3, h.Maildrop.Messages.Count);
    }

    [Fact]
    public async Task Commands_are_case_insensitive()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("user alice", "+OK send PASS");
        await h.ExpectAsync("pAsS secret", "+OK logged in; maildrop has 3 messages (82 octets)");
        await h.ExpectAsync("stat", "+OK 3 82");
    }

    [Fact]
    public async Task Pass_keeps_spaces_as_part_of_the_password()
    {
        var authenticator = new FakeAuthenticator(("bob", "correct horse  battery "));
        await using var h = await SessionHarness.StartAsync(authenticator: authenticator,
            maildrops: new FakeMaildropProvider().Add("bob", []));
        await h.ExpectAsync("USER bob", "+OK send PASS");
        await h.ExpectAsync("PASS correct horse  battery ", "+OK logged in; maildrop has 0 messages (0 octets)");
    }

    [Fact]
    public async Task Wrong_password_is_refused_with_the_auth_code_and_returns_to_authorization()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS wrong", "-ERR [AUTH] invalid user name or password");
        await h.ExpectAsync("PASS secret", "-ERR PASS is valid only right after USER");
        await h.LoginAsync();
    }

    [Fact]
    public async Task Unknown_user_gets_the_same_answers_as_a_known_one()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("USER mallory", "+OK send PASS");
        await h.ExpectAsync("PASS secret", "-ERR [AUTH] invalid user name or password");
    }

    [Fact]
    public async Task Failed_login_is_answered_only_after_the_configured_delay()
    {
        await using var h = await SessionHarness.StartAsync(o => o.FailedLoginDelay = TimeSpan.FromMilliseconds(400));
        await h.ExpectAsync("USER alice", "+OK send PASS");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await h.ExpectAsync("PASS wrong", "-ERR [AUTH] invalid user name or password");
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(350), "answered after " + clock.Elapsed);
    }

    [Fact]
    public async Task Pass_without_user_is_refused_from_the_state_table()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("PASS secret", "-ERR PASS is valid only right after USER");
        Assert.Empty(h.Authenticator.Attempts);
    }

    [Fact]
    public async Task User_then_another_command_than_pass_is_refused_and_forgets_the_user()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("STAT", "-ERR STAT is valid only after login");
        await h.ExpectAsync("PASS secret", "-ERR PASS is valid only right after USER");
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        await h.Client.ReadLinesAsync();
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("USER", "-ERR syntax: USER name");
        await h.ExpectAsync("PASS secret", "-ERR PASS is valid only right after USER");
    }

    [Theory]
    [InlineData("STAT")]
    [InlineData("LIST")]
    [InlineData("LIST 1")]
    [InlineData("UIDL")]
    [InlineData("RETR 1")]
    [InlineData("TOP 1 0")]
    [InlineData("DELE 1")]
    [InlineData("RSET")]
    [InlineData("NOOP")]
    public async Task Transaction_commands_before_login_are_refused(string command)
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync(command, "-ERR " + command.Split(' ')[0] + " is valid only after login");
        Assert.Empty(h.Maildrops.Opened);
    }

    [Theory]
    [InlineData("XYZZY")]
    [InlineData("")]
    [InlineData("LAST")]
    [InlineData("\u00e9t\u00e9")]
    public async Task Unknown_commands_are_refused_without_echoing_them(string command)
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync(command, "-ERR unknown command");
    }

    [Fact]
    public async Task Quit_in_authorization_signs_off_and_opens_nothing()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        Assert.Empty(h.Maildrops.Opened);
    }

    [Fact]
    public async Task Quit_after_user_signs_off()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off");
        await h.Client.AssertClosedAsync();
    }

    [Fact]
    public async Task Apop_is_refused_when_the_authenticator_does_not_support_it()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("APOP alice 0123456789abcdef0123456789abcdef", "-ERR APOP is not available");
        Assert.Empty(h.Authenticator.ApopAttempts);
    }

    [Fact]
    public async Task Apop_with_the_digest_of_the_greeting_timestamp_logs_in()
    {
        var authenticator = new FakeAuthenticator((SessionHarness.User, SessionHarness.Password)) { SupportsApop = true };
        await using var h = await SessionHarness.StartAsync(authenticator: authenticator, readGreeting: false);
        var greeting = await h.Client.ReadLineAsync() ?? "";
        var timestamp = greeting[greeting.IndexOf('<')..];
        await h.ExpectAsync("APOP alice " + new string('0', 32), "-ERR [AUTH] invalid user name or password");
        await h.ExpectAsync("APOP alice x", "-ERR syntax: APOP name digest");
        await h.ExpectAsync("APOP alice " + ApopDigest.Compute(timestamp, "secret").ToUpperInvariant(),
            "+OK logged in; maildrop has 3 messages (82 octets)");
        await h.ExpectAsync("STAT", "+OK 3 82");
    }

    [Fact]
    public async Task Apop_digest_helper_matches_the_rfc_1939_example()
    {
        // RFC 1939 section 7: timestamp <1896.697170952@dbc.mtview.ca.us>, secret "tanstaaf".
        Assert.Equal("c4c9334bac560ecc979e58001b3e22fb", ApopDigest.Compute("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf"));
        Assert.True(ApopDigest.Matches("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf", "C4C9334BAC560ECC979E58001B3E22FB"));
        Assert.False(ApopDigest.Matches("<1896.697170952@dbc.mtview.ca.us>", "tanstaaf", "c4c9334bac560ecc979e58001b3e22fa"));
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Auth_plain_with_an_initial_response_logs_in()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("AUTH PLAIN " + Plain("", "alice", "secret"), "+OK logged in; maildrop has 3 messages (82 octets)");
        Assert.Equal(Pop3AuthMechanism.Plain, Assert.Single(h.Authenticator.Attempts).Mechanism);
    }

    [Fact]
    public async Task Auth_plain_without_an_initial_response_sends_an_empty_challenge()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("auth plain", "+ ");
        await h.ExpectAsync(Plain("alice", "alice", "secret"), "+OK logged in; maildrop has 3 messages (82 octets)");
        Assert.Equal("alice", Assert.Single(h.Authenticator.Attempts).AuthorizationIdentity);
    }

    [Fact]
    public async Task Auth_plain_passes_a_different_authorization_identity_to_the_authenticator()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("AUTH PLAIN " + Plain("bob", "alice", "secret"), "-ERR [AUTH] invalid user name or password");
        Assert.Equal("bob", Assert.Single(h.Authenticator.Attempts).AuthorizationIdentity);
    }

    [Fact]
    public async Task Auth_plain_cancelled_with_a_star_is_refused()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("AUTH PLAIN", "+ ");
        await h.ExpectAsync("*", "-ERR authentication cancelled");
        await h.ExpectAsync("AUTH PLAIN =", "-ERR malformed PLAIN response");
        Assert.Empty(h.Authenticator.Attempts);
    }

    [Theory]
    [InlineData("AUTH PLAIN !!notbase64!!", "-ERR malformed PLAIN response")]
    [InlineData("AUTH PLAIN YWxpY2U=", "-ERR malformed PLAIN response")]
    [InlineData("AUTH PLAIN AGFsaWNlAA==", "-ERR malformed PLAIN response")]
    [InlineData("AUTH LOGIN", "-ERR unsupported authentication mechanism; supported: PLAIN")]
    [InlineData("AUTH CRAM-MD5", "-ERR unsupported authentication mechanism; supported: PLAIN")]
    [InlineData("AUTH PLAIN a b", "-ERR unsupported authentication mechanism; supported: PLAIN")]
    public async Task Auth_with_a_bad_mechanism_or_response_is_refused(string command, string reply)
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync(command, reply);
        Assert.Empty(h.Authenticator.Attempts);
    }

    [Fact]
    public async Task Auth_alone_lists_the_mechanisms()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("AUTH", "+OK supported mechanisms follow");
        Assert.Equal(["PLAIN"], await h.Client.ReadLinesAsync());
    }

    [Fact]
    public async Task Plaintext_user_and_auth_are_refused_from_an_untrusted_network_without_tls()
    {
        await using var h = await SessionHarness.StartAsync(remote: SessionHarness.Remote);
        await h.ExpectAsync("USER alice", "-ERR [AUTH] plaintext authentication is disallowed on non-secure connections");
        await h.ExpectAsync("AUTH PLAIN " + Plain("", "alice", "secret"), "-ERR [AUTH] plaintext authentication is disallowed on non-secure connections");
        Assert.Empty(h.Authenticator.Attempts);
    }

    [Fact]
    public async Task Plaintext_refusal_points_to_stls_when_it_is_available()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost, remote: SessionHarness.Remote);
        await h.ExpectAsync("USER alice", "-ERR [AUTH] plaintext authentication is disallowed on non-secure connections; use STLS first");
    }

    [Fact]
    public async Task Plaintext_is_allowed_from_a_configured_network()
    {
        await using var h = await SessionHarness.StartAsync(
            o => o.PlaintextAuthNetworks.Add(System.Net.IPNetwork.Parse("192.0.2.0/24")), remote: SessionHarness.Remote);
        await h.LoginAsync();
    }

    [Fact]
    public async Task Stls_without_a_certificate_is_refused()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.ExpectAsync("STLS", "-ERR STLS is not available");
    }

    [Fact]
    public async Task Maildrop_in_use_is_answered_with_in_use_and_the_session_stays_in_authorization()
    {
        var maildrops = new FakeMaildropProvider().Add(SessionHarness.User, SessionHarness.Mail);
        maildrops.Override = () => Pop3MaildropResult.InUse;
        await using var h = await SessionHarness.StartAsync(maildrops: maildrops);
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS secret", "-ERR [IN-USE] the maildrop is in use by another session");
        await h.ExpectAsync("STAT", "-ERR STAT is valid only after login");
        maildrops.Override = null;
        await h.LoginAsync();
    }

    [Fact]
    public async Task Maildrop_unavailable_or_throwing_is_answered_with_sys_temp()
    {
        var maildrops = new FakeMaildropProvider().Add(SessionHarness.User, SessionHarness.Mail);
        await using var h = await SessionHarness.StartAsync(maildrops: maildrops);
        maildrops.Override = () => Pop3MaildropResult.Unavailable("storage down");
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS secret", "-ERR [SYS/TEMP] the maildrop is temporarily unavailable; try again later");
        maildrops.Override = () => throw new InvalidOperationException("boom");
        await h.ExpectAsync("AUTH PLAIN " + Plain("", "alice", "secret"), "-ERR [SYS/TEMP] the maildrop is temporarily unavailable; try again later");
        maildrops.Override = null;
        await h.LoginAsync();
    }

    [Fact]
    public async Task Maildrop_permanently_unavailable_is_answered_with_sys_perm_and_the_session_stays_in_authorization()
    {
        // RFC 3206 section 4: SYS/PERM tells the client that retrying will not help until someone intervenes.
        var maildrops = new FakeMaildropProvider().Add(SessionHarness.User, SessionHarness.Mail);
        await using var h = await SessionHarness.StartAsync(maildrops: maildrops);
        maildrops.Override = () => Pop3MaildropResult.PermanentlyUnavailable("mailbox disabled");
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS secret", "-ERR [SYS/PERM] the maildrop cannot be opened; retrying will not help, ask the administrator");
        await h.ExpectAsync("STAT", "-ERR STAT is valid only after login");
        Assert.DoesNotContain(h.Logs.Entries, e => e.Message.Contains("secret", StringComparison.Ordinal));
        Assert.Contains(h.Logs.Entries, e => e.Message.Contains("mailbox disabled", StringComparison.Ordinal));
        maildrops.Override = null;
        await h.LoginAsync();
    }

    [Fact]
    public async Task Every_refused_login_carries_a_response_code_as_capa_auth_resp_code_promises()
    {
        // RFC 3206 section 5 (AUTH-RESP-CODE) and RFC 2449 section 8: a client can tell a wrong password ([AUTH])
        // from a busy maildrop ([IN-USE]) and a server problem ([SYS/TEMP], [SYS/PERM]) on USER/PASS, AUTH and APOP.
        var maildrops = new FakeMaildropProvider().Add(SessionHarness.User, SessionHarness.Mail);
        var authenticator = new FakeAuthenticator((SessionHarness.User, SessionHarness.Password)) { SupportsApop = true };
        await using var h = await SessionHarness.StartAsync(authenticator: authenticator, maildrops: maildrops);
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        var capabilities = await h.Client.ReadLinesAsync();
        Assert.Contains("AUTH-RESP-CODE", capabilities);
        Assert.Contains("RESP-CODES", capabilities);

        var attempts = new (string[] Commands, Func<Pop3MaildropResult>? Maildrop, string Code)[]
        {
            (["USER alice", "PASS wrong"], null, "[AUTH]"),
            (["AUTH PLAIN " + Plain("", "alice", "wrong")], null, "[AUTH]"),
            (["APOP alice " + new string('0', 32)], null, "[AUTH]"),
            (["USER alice", "PASS secret"], () => Pop3MaildropResult.InUse, "[IN-USE]"),
            (["AUTH PLAIN " + Plain("", "alice", "secret")], () => Pop3MaildropResult.Unavailable(), "[SYS/TEMP]"),
            (["USER alice", "PASS secret"], () => Pop3MaildropResult.PermanentlyUnavailable(), "[SYS/PERM]"),
        };
        foreach (var (commands, maildrop, code) in attempts)
        {
            maildrops.Override = maildrop;
            string? answer = null;
            foreach (var command in commands)
                answer = await h.CommandAsync(command);
            Assert.StartsWith("-ERR " + code + " ", answer, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Authenticator_temporary_failure_or_exception_is_answered_with_sys_temp()
    {
        await using var h = await SessionHarness.StartAsync();
        h.Authenticator.Override = () => Pop3AuthResult.TemporaryFailure("user store unreachable");
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS secret", "-ERR [SYS/TEMP] authentication is temporarily unavailable; try again later");
        h.Authenticator.Override = () => throw new TimeoutException();
        await h.ExpectAsync("AUTH PLAIN " + Plain("", "alice", "secret"), "-ERR [SYS/TEMP] authentication is temporarily unavailable; try again later");
    }

    [Fact]
    public async Task Passwords_and_sasl_responses_never_appear_in_the_log()
    {
        const string password = "Sup3r-Secret-Pa55";
        var authenticator = new FakeAuthenticator(("carol", password));
        await using var h = await SessionHarness.StartAsync(authenticator: authenticator,
            maildrops: new FakeMaildropProvider().Add("carol", SessionHarness.Mail));
        var plain = Plain("", "carol", password);
        await h.ExpectAsync("USER carol", "+OK send PASS");
        await h.ExpectAsync("PASS " + password + "x", "-ERR [AUTH] invalid user name or password");
        await h.ExpectAsync("AUTH PLAIN " + Plain("", "carol", password + "y"), "-ERR [AUTH] invalid user name or password");
        await h.ExpectAsync("AUTH PLAIN", "+ ");
        await h.ExpectAsync(plain, "+OK logged in; maildrop has 3 messages (82 octets)");
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (3 messages left)");
        await h.WaitForEndAsync();
        var log = h.Logs.AllText();
        Assert.Contains("carol", log);
        Assert.DoesNotContain(password, log);
        Assert.DoesNotContain(plain, log);
        Assert.DoesNotContain(password, string.Join(" ", h.Authenticator.Attempts.Select(a => a.ToString())));
    }
}
