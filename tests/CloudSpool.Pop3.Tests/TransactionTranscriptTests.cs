using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>Transcripts of the TRANSACTION and UPDATE states (RFC 1939 sections 5-7).</summary>
public sealed class TransactionTranscriptTests
{
    [Fact]
    public void Fixture_sizes_are_the_ingest_sizes()
    {
        Assert.Equal([23L, 30L, 29L], SessionHarness.Mail.Select(m => m.Pop3Size));
    }

    [Fact]
    public async Task Stat_gives_count_and_size()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("STAT", "+OK 3 82");
    }

    [Fact]
    public async Task List_gives_every_message_size_and_list_n_one()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("LIST", "+OK 3 messages (82 octets)");
        Assert.Equal(["1 23", "2 30", "3 29"], await h.Client.ReadLinesAsync());
        await h.ExpectAsync("LIST 2", "+OK 2 30");
        Assert.Empty(h.Maildrop.OpenedIndexes); // LIST never opens a message
    }

    [Fact]
    public async Task Uidl_gives_every_unique_id_and_uidl_n_one()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("UIDL", "+OK unique-id listing follows");
        Assert.Equal(["1 uid-one", "2 uid-two", "3 uid-three"], await h.Client.ReadLinesAsync());
        await h.ExpectAsync("UIDL 3", "+OK 3 uid-three");
        Assert.Empty(h.Maildrop.OpenedIndexes);
    }

    [Theory]
    [InlineData("LIST 0", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("LIST 4", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("LIST 99999999999999", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("LIST x", "-ERR syntax: a message number is required")]
    [InlineData("LIST -1", "-ERR syntax: a message number is required")]
    [InlineData("LIST +1", "-ERR syntax: a message number is required")]
    [InlineData("UIDL 4", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("RETR", "-ERR syntax: a message number is required")]
    [InlineData("RETR 4", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("DELE 0", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("TOP 1", "-ERR syntax: TOP msg n")]
    [InlineData("TOP 1 -1", "-ERR syntax: TOP msg n")]
    [InlineData("TOP 9 0", "-ERR no such message (the maildrop has 3 messages, numbered from 1)")]
    [InlineData("STAT 1", "-ERR syntax: STAT takes no argument")]
    [InlineData("NOOP x", "-ERR syntax: NOOP takes no argument")]
    [InlineData("RSET x", "-ERR syntax: RSET takes no argument")]
    public async Task Bad_message_numbers_and_arguments_are_refused(string command, string reply)
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync(command, reply);
        await h.ExpectAsync("STAT", "+OK 3 82");
    }

    [Theory]
    [InlineData("USER alice", "-ERR USER is valid only before login")]
    [InlineData("PASS secret", "-ERR PASS is valid only right after USER")]
    [InlineData("APOP alice 0123456789abcdef0123456789abcdef", "-ERR APOP is valid only before login")]
    [InlineData("AUTH PLAIN AGFsaWNlAHNlY3JldA==", "-ERR AUTH is valid only before login")]
    [InlineData("STLS", "-ERR STLS is valid only before login")]
    public async Task Authorization_commands_after_login_are_refused(string command, string reply)
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
        await h.LoginAsync();
        await h.ExpectAsync(command, reply);
        Assert.Single(h.Authenticator.Attempts);
    }

    [Fact]
    public async Task Capa_after_login_keeps_the_authorization_capabilities_but_not_stls()
    {
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost);
        await h.LoginAsync();
        await h.ExpectAsync("CAPA", "+OK capability list follows");
        Assert.Equal(
            ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "LOGIN-DELAY 0", "USER", "SASL PLAIN", "IMPLEMENTATION CloudSpool"],
            await h.Client.ReadLinesAsync());
    }

    [Fact]
    public async Task Noop_answers_ok()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("NOOP", "+OK");
    }

    [Fact]
    public async Task Retr_sends_the_message_with_crlf_line_ends_and_dot_stuffing()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("RETR 1", "+OK 23 octets");
        Assert.Equal("Subject: one\r\n\r\nHello\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
        await h.ExpectAsync("RETR 2", "+OK 30 octets");
        Assert.Equal("Subject: two\r\n\r\n..dot line\r\nend\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
        await h.ExpectAsync("RETR 3", "+OK 29 octets");
        Assert.Equal("Subject: three\r\n\r\nbinary \0\xff\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
    }

    [Fact]
    public async Task Top_sends_the_header_and_the_requested_body_lines()
    {
        var message = new FakeMessage("m", Wire.Bytes("From: a\nTo: b\n\n.one\ntwo\nthree\n"));
        await using var h = await SessionHarness.StartAsync(maildrops: new FakeMaildropProvider().Add("alice", [message]));
        await h.ExpectAsync("USER alice", "+OK send PASS");
        await h.ExpectAsync("PASS secret", "+OK logged in; maildrop has 1 messages (36 octets)");
        await h.ExpectAsync("TOP 1 0", "+OK top of message follows");
        Assert.Equal("From: a\r\nTo: b\r\n\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
        await h.ExpectAsync("TOP 1 2", "+OK top of message follows");
        Assert.Equal("From: a\r\nTo: b\r\n\r\n..one\r\ntwo\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
        await h.ExpectAsync("TOP 1 100", "+OK top of message follows");
        Assert.Equal("From: a\r\nTo: b\r\n\r\n..one\r\ntwo\r\nthree\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
    }

    [Fact]
    public async Task Retr_after_dele_in_same_session_is_refused()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("RETR 1", "-ERR message 1 already deleted");
        await h.ExpectAsync("TOP 1 0", "-ERR message 1 already deleted");
        await h.ExpectAsync("LIST 1", "-ERR message 1 already deleted");
        await h.ExpectAsync("UIDL 1", "-ERR message 1 already deleted");
        await h.ExpectAsync("DELE 1", "-ERR message 1 already deleted");
        Assert.Empty(h.Maildrop.OpenedIndexes);
    }

    [Fact]
    public async Task Dele_hides_the_message_from_stat_list_and_uidl_without_renumbering()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 2", "+OK message 2 deleted");
        await h.ExpectAsync("STAT", "+OK 2 52");
        await h.ExpectAsync("LIST", "+OK 2 messages (52 octets)");
        Assert.Equal(["1 23", "3 29"], await h.Client.ReadLinesAsync());
        await h.ExpectAsync("UIDL", "+OK unique-id listing follows");
        Assert.Equal(["1 uid-one", "3 uid-three"], await h.Client.ReadLinesAsync());
        await h.ExpectAsync("LIST 3", "+OK 3 29");
    }

    [Fact]
    public async Task Rset_unmarks_every_deleted_message()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("DELE 3", "+OK message 3 deleted");
        await h.ExpectAsync("RSET", "+OK maildrop has 3 messages (82 octets)");
        await h.ExpectAsync("STAT", "+OK 3 82");
        await h.ExpectAsync("RETR 1", "+OK 23 octets");
        await h.Client.ReadDataAsync();
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (3 messages left)");
        Assert.Equal([[]], h.Maildrop.Commits);
    }

    [Fact]
    public async Task Quit_enters_update_and_commits_exactly_the_marked_set()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("DELE 3", "+OK message 3 deleted");
        await h.ExpectAsync("RSET", "+OK maildrop has 3 messages (82 octets)");
        await h.ExpectAsync("DELE 3", "+OK message 3 deleted");
        await h.ExpectAsync("DELE 2", "+OK message 2 deleted");
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (1 messages left)");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        var commit = Assert.Single(h.Maildrop.Commits);
        Assert.Equal([1, 2], commit);
        Assert.True(h.Maildrop.Disposed);
        Assert.Equal(["uid-one"], h.Maildrops.Mailbox("alice").Select(m => m.Uidl));
    }

    [Fact]
    public async Task Quit_without_deletions_commits_an_empty_set()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (3 messages left)");
        await h.WaitForEndAsync();
        Assert.Equal([[]], h.Maildrop.Commits);
    }

    [Fact]
    public async Task Dropped_connection_commits_nothing_and_releases_the_maildrop()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("DELE 2", "+OK message 2 deleted");
        await h.DropAsync();
        Assert.Empty(h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
        Assert.Equal(3, h.Maildrops.Mailbox("alice").Count);
    }

    [Fact]
    public async Task Connection_dropped_with_quit_half_sent_commits_nothing()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.Client.SendAsync("QUI");
        await h.DropAsync();
        Assert.Empty(h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
    }

    [Fact]
    public async Task Server_stop_during_a_session_commits_nothing_and_says_why()
    {
        await using var h = await SessionHarness.StartAsync();
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await Task.Delay(200); // let the session settle into waiting for the next command
        await h.StopAsync();
        // Between commands the server says why it closes; had the stop caught it finishing a reply, it would close silently.
        var farewell = await h.Client.ReadLineAsync();
        Assert.True(farewell is null or "-ERR [SYS/TEMP] server shutting down", farewell);
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        Assert.Empty(h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
    }

    [Fact]
    public async Task Failed_commit_at_quit_says_some_messages_were_not_removed()
    {
        var maildrops = new FakeMaildropProvider().Add("alice", SessionHarness.Mail);
        maildrops.CommitFailure = new IOException("table unreachable");
        await using var h = await SessionHarness.StartAsync(maildrops: maildrops);
        await h.LoginAsync();
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("QUIT", "-ERR [SYS/TEMP] some deleted messages not removed; they will be listed again at the next login");
        await h.Client.AssertClosedAsync();
        await h.WaitForEndAsync();
        Assert.Equal([[0]], h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
    }

    [Fact]
    public async Task Message_numbers_stay_fixed_for_the_session_when_the_mailbox_changes()
    {
        var maildrops = new FakeMaildropProvider().Add("alice", SessionHarness.Mail);
        await using var h = await SessionHarness.StartAsync(maildrops: maildrops);
        await h.LoginAsync();
        maildrops.Add("alice", [SessionHarness.Three]); // new snapshot for later sessions only
        await h.ExpectAsync("UIDL 1", "+OK 1 uid-one");
        await h.ExpectAsync("STAT", "+OK 3 82");
    }
}
