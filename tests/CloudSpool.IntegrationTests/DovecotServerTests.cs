using System.Net.Sockets;
using System.Text;
using CloudSpool.TestSupport.Fixtures;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Pop3;
using MailKit.Search;
using MailKit.Security;

namespace CloudSpool.IntegrationTests;

public sealed class DovecotServerTests
{
    private const int TimeoutMs = 10_000;

    [Fact(Timeout = TimeoutMs)]
    public async Task Pop3_plain_and_implicit_tls_retrieve_the_exact_delivered_bytes()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        await using var server = await DovecotServer.StartAsync(cts.Token);
        server.AddUser("alice", "s3cret");
        byte[][] raws = [Message("first"), Message("second")];
        foreach (var raw in raws)
        {
            server.DeliverRaw("alice", raw);
        }

        foreach (var (port, options) in new[] { (server.Pop3Port, SecureSocketOptions.None), (server.Pop3sPort, SecureSocketOptions.SslOnConnect) })
        {
            using var client = new Pop3Client { ServerCertificateValidationCallback = server.ValidateServerCertificate };
            await client.ConnectAsync(server.Host, port, options, cts.Token);
            Assert.Equal(options == SecureSocketOptions.SslOnConnect, client.IsSecure);
            if (options == SecureSocketOptions.None)
            {
                Assert.True(client.Capabilities.HasFlag(Pop3Capabilities.StartTLS));
            }

            await client.AuthenticateAsync("alice", "s3cret", cts.Token);
            Assert.Equal(raws.Length, client.Count);
            Assert.Equal(raws.Select(r => r.Length), await client.GetMessageSizesAsync(cts.Token));
            for (var i = 0; i < raws.Length; i++)
            {
                await using var stream = await client.GetStreamAsync(i, cancellationToken: cts.Token);
                using var copy = new MemoryStream();
                await stream.CopyToAsync(copy, cts.Token);
                Assert.Equal(raws[i], copy.ToArray());
            }

            await client.DisconnectAsync(true, cts.Token);
        }
    }

    [Fact(Timeout = TimeoutMs)]
    public async Task Tls_is_rejected_without_trusting_the_generated_certificate()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        await using var server = await DovecotServer.StartAsync(cts.Token);
        using var client = new Pop3Client();
        await Assert.ThrowsAsync<SslHandshakeException>(() => client.ConnectAsync(server.Host, server.Pop3sPort, SecureSocketOptions.SslOnConnect, cts.Token));
    }

    [Fact(Timeout = TimeoutMs)]
    public async Task Imap_starttls_sees_inbox_and_subfolder()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        await using var server = await DovecotServer.StartAsync(cts.Token);
        server.AddUser("bob", "pw");
        server.DeliverRaw("bob", Message("in inbox"));
        server.DeliverRaw("bob", Message("archived 1"), "Archive");
        server.DeliverRaw("bob", Message("archived 2"), "Archive");

        using var client = new ImapClient { ServerCertificateValidationCallback = server.ValidateServerCertificate };
        await client.ConnectAsync(server.Host, server.ImapPort, SecureSocketOptions.StartTls, cts.Token);
        Assert.True(client.IsSecure);
        await client.AuthenticateAsync("bob", "pw", cts.Token);
        await client.Inbox.OpenAsync(FolderAccess.ReadOnly, cts.Token);
        Assert.Equal(1, client.Inbox.Count);
        var folders = await client.GetFoldersAsync(client.PersonalNamespaces[0], cancellationToken: cts.Token);
        Assert.Contains(folders, f => f.FullName == "Archive");
        var archive = await client.GetFolderAsync("Archive", cts.Token);
        await archive.OpenAsync(FolderAccess.ReadOnly, cts.Token);
        Assert.Equal(2, archive.Count);
        Assert.Equal("archived 1", (await archive.GetMessageAsync(0, cts.Token)).Subject);
        await client.DisconnectAsync(true, cts.Token);
        Assert.Equal(2, server.ListMessageFiles("bob", "Archive").Count);
    }

    [Fact(Timeout = TimeoutMs)]
    public async Task Users_added_or_changed_while_running_can_log_in_at_once()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        await using var server = await DovecotServer.StartAsync(cts.Token);
        server.AddUser("carol", "first1");
        await Pop3LoginAsync(server, "carol", "first1", cts.Token);
        await Assert.ThrowsAsync<AuthenticationException>(() => Pop3LoginAsync(server, "dave", "pw", cts.Token));

        server.AddUser("carol", "secnd2");
        server.AddUser("Dave", "pw");
        await Pop3LoginAsync(server, "carol", "secnd2", cts.Token);
        await Pop3LoginAsync(server, "DAVE", "pw", cts.Token);
        await Assert.ThrowsAsync<AuthenticationException>(() => Pop3LoginAsync(server, "carol", "first1", cts.Token));
    }

    [Fact(Timeout = TimeoutMs)]
    public async Task ResetUidValidity_changes_uidvalidity_and_renumbers_in_delivery_order()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        await using var server = await DovecotServer.StartAsync(cts.Token);
        server.AddUser("erin", "pw");
        var subjects = Enumerable.Range(1, 5).Select(i => $"m{i}").ToArray();
        foreach (var subject in subjects)
        {
            server.DeliverRaw("erin", Message(subject));
        }

        server.DeliverRaw("erin", Message("old"), "Archive");
        var before = await ReadUidValiditiesAsync(server, cts.Token);

        server.ResetUidValidity("erin");
        server.ResetUidValidity("erin", "Archive");

        var after = await ReadUidValiditiesAsync(server, cts.Token);
        Assert.NotEqual(before.Inbox, after.Inbox);
        Assert.NotEqual(before.ArchiveStatus, after.ArchiveStatus);
        Assert.Equal(after.ArchiveStatus, after.ArchiveSelect);
        Assert.Equal(subjects, after.InboxSubjectsByUid);
    }

    [Fact(Timeout = TimeoutMs)]
    public async Task Stop_refuses_connections_and_restart_serves_the_same_ports_and_mail()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        await using var server = await DovecotServer.StartAsync(cts.Token);
        server.AddUser("frank", "pw");
        server.DeliverRaw("frank", Message("survives restart"));
        var port = server.Pop3Port;
        // Below the ports outgoing connections are given, so none of them can take Dovecot's while it is down.
        Assert.All(new[] { server.Pop3Port, server.Pop3sPort, server.ImapPort, server.ImapsPort }, p => Assert.InRange(p, 1024, DovecotServer.EphemeralLow() - 1));

        await server.StopAsync();
        await server.StopAsync();
        Assert.False(server.IsRunning);
        using (var client = new Pop3Client())
        {
            await Assert.ThrowsAnyAsync<SocketException>(() => client.ConnectAsync(server.Host, port, SecureSocketOptions.None, cts.Token));
        }

        await server.RestartAsync(cts.Token);
        Assert.Equal(port, server.Pop3Port);
        Assert.Equal(1, await Pop3LoginAsync(server, "frank", "pw", cts.Token));
    }

    [Fact(Timeout = TimeoutMs)]
    public async Task Dispose_stops_dovecot_and_deletes_the_folder()
    {
        using var cts = new CancellationTokenSource(TimeoutMs);
        var server = await DovecotServer.StartAsync(cts.Token);
        Assert.True(server.IsRunning);
        await server.DisposeAsync();
        await server.DisposeAsync();
        Assert.False(server.IsRunning);
        Assert.False(Directory.Exists(server.Root));
    }

    private static byte[] Message(string subject) => Encoding.ASCII.GetBytes(
        "From: sender@example.com\r\nTo: rcpt@example.com\r\n"
        + $"Subject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@example.com>\r\n\r\n"
        + "Body line.\r\n.a line starting with a dot\r\n");

    private static async Task<int> Pop3LoginAsync(DovecotServer server, string user, string password, CancellationToken ct)
    {
        using var client = new Pop3Client();
        await client.ConnectAsync(server.Host, server.Pop3Port, SecureSocketOptions.None, ct);
        // USER/PASS only: MailKit otherwise tries PLAIN, LOGIN and USER/PASS in turn, and Dovecot's login process
        // delays every further failed attempt on one connection by 5 s.
        client.AuthenticationMechanisms.Clear();
        await client.AuthenticateAsync(user, password, ct);
        var count = client.Count;
        await client.DisconnectAsync(true, ct);
        return count;
    }

    private static async Task<(uint Inbox, uint ArchiveStatus, uint ArchiveSelect, string[] InboxSubjectsByUid)> ReadUidValiditiesAsync(
        DovecotServer server, CancellationToken ct)
    {
        using var client = new ImapClient();
        await client.ConnectAsync(server.Host, server.ImapPort, SecureSocketOptions.None, ct);
        await client.AuthenticateAsync("erin", "pw", ct);
        var archive = await client.GetFolderAsync("Archive", ct);
        await archive.StatusAsync(StatusItems.UidValidity, ct);
        var archiveStatus = archive.UidValidity;
        await archive.OpenAsync(FolderAccess.ReadOnly, ct);
        var archiveSelect = archive.UidValidity;
        await client.Inbox.OpenAsync(FolderAccess.ReadOnly, ct);
        var uids = await client.Inbox.SearchAsync(SearchQuery.All, ct);
        var summaries = await client.Inbox.FetchAsync(uids, MessageSummaryItems.Envelope | MessageSummaryItems.UniqueId, ct);
        var subjects = summaries.OrderBy(s => s.UniqueId.Id).Select(s => s.Envelope?.Subject ?? string.Empty).ToArray();
        var inbox = client.Inbox.UidValidity;
        await client.DisconnectAsync(true, ct);
        return (inbox, archiveStatus, archiveSelect, subjects);
    }
}
