using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Edge;
using CloudSpool.Pop3;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport;
using CloudSpool.TestSupport.Fixtures;
using MailKit.Net.Pop3;

namespace CloudSpool.IntegrationTests;

/// <summary>The POP3 edge over a real Azurite: MailKit and curl against real sockets, per-client views, users.</summary>
public sealed class EdgeTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private PullHarness _spool = null!;
    private SpoolEdge _edge = null!;
    private Pop3Server _server = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        _spool = await PullHarness.StartAsync();
        _edge = _spool.Runtime.CreateEdge();
        _server = _edge.CreateServer(new Pop3ServerOptions { FailedLoginDelay = TimeSpan.FromMilliseconds(50) });
        await _server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        _port = _server.LocalEndPoints[0].Port;
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _edge.DisposeAsync();
        await _spool.DisposeAsync();
    }

    private async Task AddUserAsync(string name, string password, string? mailbox = null) =>
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User(name, mailbox ?? name, Pop3Passwords.Hash(password)), CancellationToken.None));

    /// <summary>Puts a message into the spool as the pull job does: blob first, then the metadata commit.</summary>
    private Task<SpoolMessage> PutAsync(string mailbox, byte[] raw) => _spool.PutAsync(mailbox, raw);

    private async Task<List<SpoolMessage>> PutThreeAsync(string mailbox)
    {
        var bareLf = Encoding.ASCII.GetBytes("From: a@example.org\nTo: b@example.org\nSubject: bare LF\nMessage-ID: <lf-" + Guid.NewGuid().ToString("N") + "@x>\n\n.leading dot\nline two\n");
        return
        [
            await PutAsync(mailbox, TestMail.Create("first")),
            await PutAsync(mailbox, bareLf),
            await PutAsync(mailbox, TestMail.Create("third", bodyBytes: 200_000)),
        ];
    }

    private async Task<Pop3Client> ConnectAsync(string login, string password)
    {
        using var timeout = new CancellationTokenSource(Bound);
        var client = new Pop3Client { Timeout = (int)Bound.TotalMilliseconds };
        await client.ConnectAsync("127.0.0.1", _port, MailKit.Security.SecureSocketOptions.None, timeout.Token);
        await client.AuthenticateAsync(login, password, timeout.Token);
        return client;
    }

    /// <summary>What a POP3 client must receive: the stored bytes with every bare LF made CRLF (a bare CR goes out as stored).</summary>
    private static byte[] OnTheWire(byte[] stored)
    {
        var result = new List<byte>(stored.Length + 64);
        for (var i = 0; i < stored.Length; i++)
        {
            if (stored[i] == '\n' && (i == 0 || stored[i - 1] != '\r'))
                result.Add((byte)'\r');
            result.Add(stored[i]);
        }
        return [.. result];
    }

    private async Task WaitForNoSessionsAsync()
    {
        var deadline = DateTime.UtcNow + Bound;
        while (_edge.Maildrops.OpenSessions > 0 || _server.ActiveSessions > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "sessions did not end");
            await Task.Delay(20);
        }
    }

    private Task<(TcpClient Client, string Answer)> RawLoginAsync(string login, string password) => Pop3Raw.LoginAsync(_port, login, password);

    private async Task AssertLoginRefusedAsync(string login, string password)
    {
        var (client, answer) = await RawLoginAsync(login, password);
        using (client)
            Assert.True(answer.StartsWith("-ERR [AUTH]", StringComparison.Ordinal), $"{login}: {answer}");
    }

    [Fact]
    public async Task Stat_list_and_uidl_come_from_metadata_and_retr_returns_the_stored_bytes_with_crlf()
    {
        await AddUserAsync("alice", "secret");
        var stored = await PutThreeAsync("alice");

        using var client = await ConnectAsync("alice", "secret");
        Assert.Equal(3, client.Count);
        Assert.Equal(stored.Select(m => (int)m.Pop3Size), await client.GetMessageSizesAsync());
        Assert.Equal(stored.Select(m => m.Uidl), await client.GetMessageUidsAsync());
        for (var i = 0; i < stored.Count; i++)
        {
            await using var stream = await client.GetStreamAsync(i);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            var expected = OnTheWire(await _spool.ReadRawAsync(stored[i]));
            Assert.Equal(expected, copy.ToArray());
            Assert.Equal(stored[i].Pop3Size, copy.Length);
        }
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task Each_client_identity_has_its_own_view_and_a_mailbox_can_be_shared()
    {
        await AddUserAsync("alice", "secret");
        await AddUserAsync("bob", "other", mailbox: "alice");
        var stored = await PutThreeAsync("alice");

        using (var alice = await ConnectAsync("alice", "secret"))
        {
            await alice.DeleteMessageAsync(0);
            await alice.DeleteMessageAsync(2);
            await alice.DisconnectAsync(quit: true);
        }
        await WaitForNoSessionsAsync();

        using (var again = await ConnectAsync("alice", "secret"))
        {
            Assert.Equal([stored[1].Uidl], await again.GetMessageUidsAsync());
            await again.DisconnectAsync(quit: true);
        }
        using (var laptop = await ConnectAsync("alice+laptop", "secret"))
        {
            Assert.Equal(stored.Select(m => m.Uidl), await laptop.GetMessageUidsAsync());
            await laptop.DeleteMessageAsync(1);
            await laptop.DisconnectAsync(quit: true);
        }
        using (var bob = await ConnectAsync("bob", "other"))
        {
            Assert.Equal(3, bob.Count);
            await bob.DisconnectAsync(quit: true);
        }
        await WaitForNoSessionsAsync();
        using (var laptop = await ConnectAsync("ALICE+laptop", "secret"))
        {
            Assert.Equal([stored[0].Uidl, stored[2].Uidl], await laptop.GetMessageUidsAsync());
            await laptop.DisconnectAsync(quit: true);
        }
        // The spool keeps everything: views only hide.
        Assert.Equal(3, (await _spool.ListAsync("alice")).Count);
        // Hiding again is harmless (a retried QUIT).
        await _spool.Runtime.ClientViews.HideAsync("alice", "alice", [stored[0].MessageKey], CancellationToken.None);
        Assert.Equal(2, (await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice", CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_client_deleting_a_message_each_session_keeps_a_view_of_few_rows_and_every_deletion()
    {
        await AddUserAsync("erin", "secret");
        const int sessions = AzureClientViewStore.CompactAbove + 8;
        var stored = new List<SpoolMessage>();
        foreach (var i in Enumerable.Range(0, sessions + 2))
            stored.Add(await PutAsync("erin", TestMail.Create($"poll {i}")));

        // A phone polling: each session deletes the oldest message it sees and quits.
        for (var i = 0; i < sessions; i++)
        {
            using var phone = await ConnectAsync("erin", "secret");
            Assert.Equal(stored[i].Uidl, (await phone.GetMessageUidsAsync())[0]);
            await phone.DeleteMessageAsync(0);
            await phone.DisconnectAsync(quit: true);
            await WaitForNoSessionsAsync();
        }

        // The edge merged the view's rows in the background once a login listed more than CompactAbove of them (a row
        // per QUIT without it), while the phone went on quitting.
        var partition = StorageNames.ViewPartition("erin", "erin");
        async Task<int> RowsAsync()
        {
            var count = 0;
            await foreach (var e in _spool.Runtime.Storage.Views.QueryAsync<Azure.Data.Tables.TableEntity>($"PartitionKey eq '{partition}'", select: ["RowKey"]))
                count += e.RowKey.StartsWith("h:", StringComparison.Ordinal) ? 0 : 1;
            return count;
        }
        var deadline = DateTimeOffset.UtcNow + Bound;
        while (await RowsAsync() > sessions - AzureClientViewStore.CompactAbove && DateTimeOffset.UtcNow < deadline)
            await Task.Delay(100);
        Assert.InRange(await RowsAsync(), 1, sessions - AzureClientViewStore.CompactAbove);

        using (var laptop = await ConnectAsync("erin", "secret"))
        {
            Assert.Equal(stored.Skip(sessions).Select(m => m.Uidl), await laptop.GetMessageUidsAsync());
            await laptop.DisconnectAsync(quit: true);
        }
        Assert.Equal(sessions, (await _spool.Runtime.ClientViews.ListHiddenAsync("erin", "erin", CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_new_login_of_the_same_client_identity_takes_over_and_a_wrong_password_does_not()
    {
        await AddUserAsync("alice", "secret");
        await PutAsync("alice", TestMail.Create("one"));
        await PutAsync("alice", TestMail.Create("two"));

        var first = await RawPop3Client.LogInAsync(_port, "alice", "secret");
        Assert.StartsWith("+OK", await first.CommandAsync("DELE 1"));
        // A wrong password never ends it, nor does a login of another identity.
        await AssertLoginRefusedAsync("alice", "wrong");
        using (var laptop = await ConnectAsync("alice+laptop", "secret"))
        {
            Assert.Equal(2, laptop.Count);
            await laptop.DisconnectAsync(quit: true);
        }
        Assert.StartsWith("+OK", await first.CommandAsync("NOOP"));

        // The right password takes over: the earlier session is ended at once and its DELE is never applied.
        using var second = await ConnectAsync("alice", "secret");
        Assert.Equal(2, second.Count);
        Assert.StartsWith("-ERR [IN-USE]", await first.ReadToEndAsync());
        await first.DisposeAsync();
        await second.DeleteMessageAsync(0);
        await second.DisconnectAsync(quit: true);

        await WaitForNoSessionsAsync();
        using var third = await ConnectAsync("alice", "secret");
        Assert.Equal(1, third.Count);
        await third.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task Mailkit_and_curl_that_come_back_after_a_dropped_connection_get_in_at_once()
    {
        await AddUserAsync("alice", "secret");
        var stored = new[] { await PutAsync("alice", TestMail.Create("one")), await PutAsync("alice", TestMail.Create("two")) };

        // Log in, DELE 1, close the socket without QUIT, log in again at once (issue 16: 13 rounds of 20 were refused).
        for (var i = 0; i < 10; i++)
        {
            using var dropped = await ConnectAsync("alice", "secret");
            await dropped.DeleteMessageAsync(0);
            dropped.Dispose();
            using var back = await ConnectAsync("alice", "secret");
            Assert.Equal(2, back.Count);
        }

        // A connection that died without a FIN (a laptop that slept): the server still holds it open.
        var asleep = await ConnectAsync("alice", "secret");
        await asleep.DeleteMessageAsync(0);
        using (var woke = await ConnectAsync("alice", "secret"))
        {
            Assert.Equal(2, woke.Count);
            await woke.DisconnectAsync(quit: true);
        }
        var phone = await RawPop3Client.LogInAsync(_port, "alice+phone", "secret");
        Assert.StartsWith("+OK", await phone.CommandAsync("DELE 1"));
        var curl = await CurlAsync($"pop3://127.0.0.1:{_port}/1", "alice+phone:secret");
        Assert.True(curl.ExitCode == 0, curl.Stderr);
        Assert.Equal(OnTheWire(await _spool.ReadRawAsync(stored[0])), curl.Stdout);
        asleep.Dispose();
        await phone.DisposeAsync();
        Assert.Empty(await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice+phone", CancellationToken.None));
    }

    [Fact]
    public async Task A_client_that_logs_in_again_right_after_quit_is_not_in_use()
    {
        await AddUserAsync("alice", "secret");
        await PutAsync("alice", TestMail.Create("one"));
        for (var i = 0; i < 5; i++)
        {
            using var client = await ConnectAsync("alice", "secret");
            Assert.Equal(1, client.Count);
            await client.DisconnectAsync(quit: true);
        }
    }

    [Fact]
    public async Task A_remembered_login_still_refuses_a_wrong_password_and_forgets_a_changed_one()
    {
        await AddUserAsync("alice", "secret");
        using (var first = await ConnectAsync("alice", "secret"))
            await first.DisconnectAsync(quit: true);

        await AssertLoginRefusedAsync("alice", "secreT");
        Assert.True(await _spool.Runtime.Pop3Users.UpdateAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("changed")), CancellationToken.None));
        await AssertLoginRefusedAsync("alice", "secret");
        using var changed = await ConnectAsync("alice", "changed");
        Assert.Equal(0, changed.Count);
        await changed.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task Wrong_passwords_unknown_users_and_bad_login_names_are_refused()
    {
        await AddUserAsync("alice", "secret");
        foreach (var (login, password) in new[] { ("alice", "wrong"), ("alice+laptop", "wrong"), ("nobody", "secret"), ("alice+", "secret"), ("ali!ce", "secret"), ("alice+lap+top", "secret") })
            await AssertLoginRefusedAsync(login, password);
        using var ok = await ConnectAsync("alice", "secret");
        Assert.Equal(0, ok.Count);
    }

    [Fact]
    public async Task A_dropped_connection_hides_nothing()
    {
        await AddUserAsync("alice", "secret");
        await PutThreeAsync("alice");

        var dropped = await ConnectAsync("alice", "secret");
        await dropped.DeleteMessageAsync(0);
        await dropped.DeleteMessageAsync(1);
        await dropped.DisconnectAsync(quit: false); // the socket closes without QUIT
        dropped.Dispose();
        await WaitForNoSessionsAsync();

        using var again = await ConnectAsync("alice", "secret");
        Assert.Equal(3, again.Count);
        Assert.Empty(await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice", CancellationToken.None));
    }

    [Fact]
    public async Task A_missing_blob_fails_only_its_own_retr()
    {
        await AddUserAsync("alice", "secret");
        var stored = await PutThreeAsync("alice");
        await _spool.Runtime.Storage.Spool.GetBlobClient(stored[1].BlobName).DeleteAsync();

        using var client = await ConnectAsync("alice", "secret");
        Assert.Equal(3, client.Count);
        Assert.Equal(stored.Select(m => (int)m.Pop3Size), await client.GetMessageSizesAsync());
        var error = await Assert.ThrowsAsync<Pop3CommandException>(() => client.GetMessageAsync(1));
        Assert.Contains("SYS/TEMP", error.StatusText + " " + error.Message, StringComparison.Ordinal);
        Assert.Equal("first", (await client.GetMessageAsync(0)).Subject);
        Assert.Equal("third", (await client.GetMessageAsync(2)).Subject);
        await client.NoOpAsync();
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task Curl_and_mpop_retrieve_every_message_and_mpop_deletes_only_from_its_own_view()
    {
        await AddUserAsync("alice", "secret");
        var stored = await PutThreeAsync("alice");
        for (var i = 0; i < stored.Count; i++)
        {
            var curl = await CurlAsync($"pop3://127.0.0.1:{_port}/{i + 1}", "alice+curl:secret");
            Assert.True(curl.ExitCode == 0, curl.Stderr);
            Assert.Equal(OnTheWire(await _spool.ReadRawAsync(stored[i])), curl.Stdout);
        }

        var directory = Directory.CreateTempSubdirectory("cloudspool-mpop-").FullName;
        try
        {
            var maildir = Path.Combine(directory, "Maildir");
            foreach (var sub in new[] { "new", "cur", "tmp" })
                Directory.CreateDirectory(Path.Combine(maildir, sub));
            var config = Path.Combine(directory, "mpoprc");
            await File.WriteAllTextAsync(config, $"""
                defaults
                tls off
                auth user
                received_header off
                keep off
                uidls_file {Path.Combine(directory, "uidls")}

                account edge
                host 127.0.0.1
                port {_port}
                user alice+mpop
                password secret
                delivery maildir {maildir}
                """);
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var mpop = await ExternalTool.RunAsync("mpop", "--file=" + config, "--quiet", "edge");
            Assert.True(mpop.ExitCode == 0, $"mpop exit {mpop.ExitCode}: {mpop.Stderr}{Encoding.UTF8.GetString(mpop.Stdout)}");

            // mpop stores each message with LF line ends (the CRLFs of the wire undone).
            var delivered = Directory.GetFiles(Path.Combine(maildir, "new")).Select(f => Encoding.Latin1.GetString(File.ReadAllBytes(f))).Order(StringComparer.Ordinal);
            var expected = new List<string>();
            foreach (var message in stored)
                expected.Add(Encoding.Latin1.GetString(OnTheWire(await _spool.ReadRawAsync(message))).Replace("\r\n", "\n", StringComparison.Ordinal));
            Assert.Equal(expected.Order(StringComparer.Ordinal), delivered);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }

        // mpop deleted its copies (keep off): hidden for alice+mpop only.
        await WaitForNoSessionsAsync();
        Assert.Equal(3, (await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice+mpop", CancellationToken.None)).Count);
        using var alice = await ConnectAsync("alice", "secret");
        Assert.Equal(3, alice.Count);
    }

    [Fact]
    public async Task Cli_user_add_reads_the_password_from_stdin_and_cloudspool_edge_serves_curl()
    {
        var message = await PutAsync("carol", TestMail.Create("for curl", bodyBytes: 5000));
        // Port 0: the edge binds a free port itself and logs it; a port picked here and bound later could be
        // taken in between by another test's server.
        var env = _spool.CliEnvironment(("CLOUDSPOOL__Edge__Port", "0"));

        var add = await RunWithStdinAsync(env, "hunter2-from-stdin\n", "user", "add", "carol");
        Assert.True(add.ExitCode == 0, add.Stderr);
        Assert.DoesNotContain("hunter2", add.Stdout + add.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, (await RunWithStdinAsync(env, "again\n", "user", "add", "carol")).ExitCode);
        Assert.Equal(2, (await RunWithStdinAsync(env, "", "user", "add", "dave")).ExitCode);
        var list = await CliProcess.RunAsync(env, "user", "list");
        Assert.Contains("carol", list.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("AQAAAA", list.Stdout, StringComparison.Ordinal); // never a hash

        using var edge = CliProcess.Start(env, "edge");
        var port = await WaitForListeningPortAsync(edge);
        // No certificate configured: one is generated into Edge:StateDirectory and its fingerprint logged for pinning.
        Assert.Matches("generated a self-signed TLS certificate .*edge-certificate.pem, SHA-256 fingerprint ([0-9A-F]{2}:){31}[0-9A-F]{2}", edge.Stderr);

        var curl = await CurlAsync($"pop3://127.0.0.1:{port}/1", "carol+curl:hunter2-from-stdin");
        Assert.True(curl.ExitCode == 0, curl.Stderr);
        Assert.Equal(await _spool.ReadRawAsync(message), curl.Stdout);

        // A running edge learns of a changed password from its background listing of the users (every Edge:SyncInterval).
        Assert.Equal(0, (await RunWithStdinAsync(env, "changed\n", "user", "passwd", "carol")).ExitCode);
        var deadline = DateTime.UtcNow + Bound;
        while ((await CurlAsync($"pop3://127.0.0.1:{port}/1", "carol:hunter2-from-stdin")).ExitCode == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the old password still works after " + Bound);
            await Task.Delay(500);
        }
        Assert.Equal(0, (await CurlAsync($"pop3://127.0.0.1:{port}/1", "carol:changed")).ExitCode);

        await edge.TerminateAsync();
        Assert.Equal(0, await edge.WaitAsync(Bound));
        Assert.DoesNotContain("hunter2", edge.Stdout + edge.Stderr, StringComparison.Ordinal);
        Assert.Equal(0, (await CliProcess.RunAsync(env, "user", "remove", "carol")).ExitCode);
        Assert.Equal(1, (await CliProcess.RunAsync(env, "user", "remove", "carol")).ExitCode);
    }

    /// <summary>The port from the edge's "POP3 edge listening on 127.0.0.1:PORT" log line.</summary>
    private static Task<int> WaitForListeningPortAsync(CliProcess process) => process.WaitForEdgePortAsync(Bound);

    private static Task<(int ExitCode, byte[] Stdout, string Stderr)> CurlAsync(string url, string userPassword) =>
        ExternalTool.RunAsync("curl", "--silent", "--show-error", "--max-time", "30", "--user", userPassword, url);

    private static Task<(int ExitCode, string Stdout, string Stderr)> RunWithStdinAsync(IReadOnlyDictionary<string, string> env, string stdin, params string[] args) =>
        CliProcess.RunWithInputAsync(env, stdin, args);
}
