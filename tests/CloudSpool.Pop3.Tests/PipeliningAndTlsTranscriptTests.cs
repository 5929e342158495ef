using System.Text;
using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>RFC 2449 pipelining and RFC 2595 STLS, including data queued behind STLS.</summary>
public sealed class PipeliningAndTlsTranscriptTests
{
    [Fact]
    public async Task Pipelined_commands_in_one_write_are_answered_in_order()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.Client.SendAsync("CAPA\r\nUSER alice\r\nPASS secret\r\nSTAT\r\nLIST\r\nUIDL 2\r\nRETR 2\r\nTOP 1 0\r\nDELE 1\r\nNOOP\r\nSTAT\r\nQUIT\r\n");
        var transcript = Wire.Text(await h.Client.ReadToEndAsync());
        Assert.Equal(
            "+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\nEXPIRE NEVER\r\nLOGIN-DELAY 0\r\n" +
            "USER\r\nSASL PLAIN\r\nIMPLEMENTATION CloudSpool\r\n.\r\n" +
            "+OK send PASS\r\n" +
            "+OK logged in; maildrop has 3 messages (82 octets)\r\n" +
            "+OK 3 82\r\n" +
            "+OK 3 messages (82 octets)\r\n1 23\r\n2 30\r\n3 29\r\n.\r\n" +
            "+OK 2 uid-two\r\n" +
            "+OK 30 octets\r\nSubject: two\r\n\r\n..dot line\r\nend\r\n.\r\n" +
            "+OK top of message follows\r\nSubject: one\r\n\r\n.\r\n" +
            "+OK message 1 deleted\r\n" +
            "+OK\r\n" +
            "+OK 2 59\r\n" +
            "+OK CloudSpool signing off (2 messages left)\r\n",
            transcript);
        await h.WaitForEndAsync();
        Assert.Equal([[0]], h.Maildrop.Commits);
    }

    [Fact]
    public async Task A_message_is_opened_knowing_the_messages_the_pipelined_RETR_and_TOP_after_it_ask_for()
    {
        var mail = Enumerable.Range(1, 6).Select(i => new FakeMessage($"uid-{i}", Wire.Bytes($"Subject: {i}\r\n\r\nbody\r\n"))).ToList();
        await using var h = await SessionHarness.StartAsync(maildrops: new FakeMaildropProvider().Add(SessionHarness.User, mail));
        // After RETR 2: its own number again, a deleted one, one out of range, a TOP, a repeat, a bad number, and what
        // comes after QUIT (which never runs).
        await h.Client.SendAsync("USER alice\r\nPASS secret\r\nDELE 4\r\nRETR 2\r\nNOOP\r\nretr 5\r\nRETR 2\r\nRETR 4\r\nRETR 9\r\nTOP 1 0\r\nRETR 5\r\nRETR x\r\nQUIT\r\nRETR 6\r\n");
        var transcript = Wire.Text(await h.Client.ReadToEndAsync());
        Assert.EndsWith("+OK CloudSpool signing off (5 messages left)\r\n", transcript, StringComparison.Ordinal);
        await h.WaitForEndAsync();
        Assert.Equal(
            ["1: 4 0", "4: 1 0", "1: 0 4", "0: 4", "4: "],
            h.Maildrop.OpenedWithUpcoming.Select(o => $"{o.Index}: {string.Join(' ', o.Upcoming)}"));
    }

    [Fact]
    public async Task A_message_opened_with_nothing_pipelined_after_it_is_told_none()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("RETR 1", "+OK 23 octets");
        await h.Client.ReadDataAsync();
        await h.ExpectAsync("TOP 3 0", "+OK top of message follows");
        await h.Client.ReadDataAsync();
        Assert.Equal(["0: ", "2: "], h.Maildrop.OpenedWithUpcoming.Select(o => $"{o.Index}: {string.Join(' ', o.Upcoming)}"));
    }

    [Fact]
    public async Task Pipelined_commands_split_at_arbitrary_bytes_are_answered_the_same()
    {
        await using var h = await SessionHarness.StartAsync();
        var input = Encoding.ASCII.GetBytes("USER alice\r\nPASS secret\r\nSTAT\r\nUIDL\r\nQUIT\r\n");
        foreach (var b in input)
            await h.Client.SendAsync([b]);
        Assert.Equal(
            "+OK send PASS\r\n+OK logged in; maildrop has 3 messages (82 octets)\r\n+OK 3 82\r\n" +
            "+OK unique-id listing follows\r\n1 uid-one\r\n2 uid-two\r\n3 uid-three\r\n.\r\n+OK CloudSpool signing off (3 messages left)\r\n",
            Wire.Text(await h.Client.ReadToEndAsync()));
    }

    [Fact]
    public async Task Commands_ending_in_a_bare_lf_are_accepted()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.Client.SendAsync("USER alice\nPASS secret\nSTAT\n");
        Assert.Equal("+OK send PASS", await h.Client.ReadLineAsync());
        Assert.Equal("+OK logged in; maildrop has 3 messages (82 octets)", await h.Client.ReadLineAsync());
        Assert.Equal("+OK 3 82", await h.Client.ReadLineAsync());
    }

    [Fact]
    public async Task Stls_upgrades_to_tls_and_the_session_continues_in_authorization()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost, remote: SessionHarness.Remote);
        await h.ExpectAsync("STLS", "+OK begin TLS negotiation");
        await h.Client.StartTlsAsync(TestCertificates.Localhost);
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        Assert.Equal(
            ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0", "USER", "SASL PLAIN", "IMPLEMENTATION CloudSpool"],
            await h.Client.ReadLinesAsync());
        await h.ExpectAsync("STLS", "-ERR already using TLS");
        await h.LoginAsync();
        Assert.True(Assert.Single(h.Authenticator.Attempts).Connection.IsSecure);
        await h.ExpectAsync("RETR 3", "+OK 29 octets");
        Assert.Equal("Subject: three\r\n\r\nbinary \0\xff\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (3 messages left)");
    }

    [Fact]
    public async Task Commands_queued_behind_stls_are_discarded_not_executed()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
        // A man in the middle appends plaintext after the client's STLS (CVE-2011-0411): it must never run.
        await h.Client.SendAsync("STLS\r\nUSER evil\r\n");
        Assert.Equal("+OK begin TLS negotiation", await h.Client.ReadLineAsync());
        await h.Client.StartTlsAsync(TestCertificates.Localhost);
        // Had "USER evil" run, PASS would be accepted as its continuation.
        await h.ExpectAsync("PASS secret", "-ERR PASS is valid only right after USER");
        await h.LoginAsync();
        Assert.Equal(["alice"], h.Authenticator.Attempts.Select(a => a.UserName));
    }

    [Fact]
    public async Task A_whole_login_queued_behind_stls_is_discarded()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
        await h.Client.SendAsync("STLS\r\nUSER alice\r\nPASS secret\r\nDELE 1\r\nQUIT\r\n");
        Assert.Equal("+OK begin TLS negotiation", await h.Client.ReadLineAsync());
        await h.Client.StartTlsAsync(TestCertificates.Localhost);
        await h.ExpectAsync("STAT", "-ERR STAT is valid only after login");
        Assert.Empty(h.Authenticator.Attempts);
        Assert.Empty(h.Maildrops.Opened);
    }

    [Fact]
    public async Task Plaintext_instead_of_a_tls_handshake_ends_the_session()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
        await h.ExpectAsync("STLS", "+OK begin TLS negotiation");
        await h.Client.SendAsync("USER evil\r\nPASS x\r\n");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        Assert.Empty(h.Authenticator.Attempts);
    }
}
