using System.Net;
using System.Net.Sockets;
using CloudSpool.Pop3.Tests.Support;
using MailKit.Net.Pop3;
using MailKit.Security;

namespace CloudSpool.Pop3.Tests;

/// <summary>The listener: ports, the session cap, stopping, and hostile clients next to a normal one.</summary>
public sealed class ServerTests
{
    private static async Task<WireClient> ConnectAsync(int port, IPAddress? from = null)
    {
        var socket = new TcpClient(new IPEndPoint(from ?? IPAddress.Loopback, 0));
        await socket.ConnectAsync(IPAddress.Loopback, port).WaitAsync(WireClient.Patience);
        return new WireClient(socket.GetStream());
    }

    [Fact]
    public async Task One_address_gets_its_share_of_the_sessions_and_no_more_while_another_address_is_served()
    {
        await using var server = await ServerHarness.StartAsync(o => (o.MaxSessions, o.MaxSessionsPerAddress) = (10, 3), mail: SessionHarness.Mail);
        var held = new List<WireClient>();
        for (var i = 0; i < 3; i++)
        {
            held.Add(await ConnectAsync(server.PlainPort));
            Assert.StartsWith("+OK CloudSpool POP3 server ready", await held[i].ReadLineAsync());
        }
        // Loopback is not exempt: the fourth from 127.0.0.1 is told at once and closed, before any greeting.
        await using (var fourth = await ConnectAsync(server.PlainPort))
        {
            Assert.Equal("-ERR [SYS/TEMP] too many sessions from your address at once; try again later", await fourth.ReadLineAsync());
            await fourth.AssertClosedAsync();
        }
        Assert.Contains(server.Logs.Entries, e => e.Message.Contains("3 sessions from its address already (limit 3)", StringComparison.Ordinal));

        // Another address still gets in (the whole server has room).
        await using (var neighbour = await ConnectAsync(server.PlainPort, IPAddress.Parse("127.0.0.2")))
            Assert.StartsWith("+OK CloudSpool POP3 server ready", await neighbour.ReadLineAsync());

        // A slot freed is a slot again.
        await held[0].SendAsync("QUIT\r\n");
        Assert.StartsWith("+OK", await held[0].ReadLineAsync());
        await held[0].AssertClosedAsync();
        await WaitUntilAsync(() => server.Server.ActiveSessions == 2);
        await using (var again = await ConnectAsync(server.PlainPort))
            Assert.StartsWith("+OK CloudSpool POP3 server ready", await again.ReadLineAsync());
        foreach (var client in held)
            await client.DisposeAsync();
    }

    [Fact]
    public async Task Tls_is_pinned_to_1_2_and_1_3_by_default_and_cannot_be_set_lower()
    {
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13, new Pop3ServerOptions().TlsProtocols);
#pragma warning disable SYSLIB0039 // the obsolete versions, named to be refused
        foreach (var weak in new[] { System.Security.Authentication.SslProtocols.None, System.Security.Authentication.SslProtocols.Tls11,
                     System.Security.Authentication.SslProtocols.Tls | System.Security.Authentication.SslProtocols.Tls12 })
#pragma warning restore SYSLIB0039
        {
            var error = Assert.Throws<ArgumentException>(() => new Pop3Server(
                new Pop3ServerOptions { TlsProtocols = weak }, new FakeAuthenticator(), new FakeMaildropProvider()));
            Assert.Contains("TlsProtocols must be TLS 1.2, TLS 1.3 or both", error.Message);
        }

        // On the wire: a TLS 1.2 client and a TLS 1.3 client are served on the implicit-TLS port.
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        foreach (var version in new[] { System.Security.Authentication.SslProtocols.Tls12, System.Security.Authentication.SslProtocols.Tls13 })
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, server.TlsPort).WaitAsync(WireClient.Patience);
            await using var tls = new System.Net.Security.SslStream(tcp.GetStream(), false, (_, _, _, _) => true);
            await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = version })
                .WaitAsync(WireClient.Patience);
            Assert.Equal(version, tls.SslProtocol);
        }
    }

    [Fact]
    public async Task Server_bound_to_port_zero_exposes_the_real_ports()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        Assert.All(server.Server.LocalEndPoints, e => Assert.NotEqual(0, e.Port));
        Assert.Equal(IPAddress.Loopback, server.Server.LocalEndPoints[0].Address);
        await using var client = await ConnectAsync(server.PlainPort);
        Assert.Equal("+OK CloudSpool POP3 server ready", await client.ReadLineAsync());
    }

    [Fact]
    public async Task Implicit_tls_endpoint_without_a_certificate_is_refused_at_start()
    {
        await using var server = new Pop3Server(SessionHarness.TestOptions(), new FakeAuthenticator(), new FakeMaildropProvider());
        await Assert.ThrowsAsync<InvalidOperationException>(() =>
            server.StartAsync([new Pop3Endpoint(new IPEndPoint(IPAddress.Loopback, 0), ImplicitTls: true)]));
    }

    [Fact]
    public void Invalid_options_are_reported_with_names_and_values()
    {
        var options = new Pop3ServerOptions { MaxBadCommands = 0, MaxSessions = -1, IdleTimeoutAfterLogin = TimeSpan.Zero };
        var error = Assert.Throws<ArgumentException>(() => new Pop3Server(options, new FakeAuthenticator(), new FakeMaildropProvider()));
        Assert.Contains("MaxBadCommands must be at least 1 (was 0)", error.Message);
        Assert.Contains("MaxSessions must be at least 1 (was -1)", error.Message);
        Assert.Contains("IdleTimeoutAfterLogin must be positive", error.Message);
    }

    [Fact]
    public async Task Connections_over_the_session_cap_are_told_and_closed_while_others_are_served()
    {
        await using var server = await ServerHarness.StartAsync(o => o.MaxSessions = 2, mail: SessionHarness.Mail);
        await using var first = await ConnectAsync(server.PlainPort);
        await using var second = await ConnectAsync(server.PlainPort);
        Assert.StartsWith("+OK", await first.ReadLineAsync());
        Assert.StartsWith("+OK", await second.ReadLineAsync());
        await using (var third = await ConnectAsync(server.PlainPort))
        {
            Assert.Equal("-ERR [SYS/TEMP] too many sessions at once; try again later", await third.ReadLineAsync());
            await third.AssertClosedAsync();
        }
        await first.SendAsync("QUIT\r\n");
        Assert.Equal("+OK CloudSpool signing off", await first.ReadLineAsync());
        await first.AssertClosedAsync();
        await WaitUntilAsync(() => server.Server.ActiveSessions == 1);
        await using var fourth = await ConnectAsync(server.PlainPort);
        Assert.StartsWith("+OK CloudSpool POP3 server ready", await fourth.ReadLineAsync());
    }

    [Fact]
    public async Task Stop_ends_every_session_without_committing_and_closes_the_listener()
    {
        var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        await using var client = await ConnectAsync(server.PlainPort);
        await client.ReadLineAsync();
        await client.SendAsync("USER alice\r\nPASS secret\r\nDELE 1\r\n");
        Assert.Equal("+OK send PASS", await client.ReadLineAsync());
        await client.ReadLineAsync();
        Assert.Equal("+OK message 1 deleted", await client.ReadLineAsync());
        await Task.Delay(200); // let the session settle into waiting for the next command
        await server.DisposeAsync();
        // Between commands the server says why it closes; had the stop caught it finishing a reply, it would close silently.
        var farewell = await client.ReadLineAsync();
        Assert.True(farewell is null or "-ERR [SYS/TEMP] server shutting down", farewell);
        await client.AssertClosedAsync();
        Assert.Empty(Assert.Single(server.Maildrops.Opened).Commits);
        Assert.Equal(0, server.Server.ActiveSessions);
        using var refused = new TcpClient();
        await Assert.ThrowsAnyAsync<SocketException>(() => refused.ConnectAsync(IPAddress.Loopback, server.PlainPort));
    }

    [Fact]
    public async Task Hostile_clients_do_not_disturb_a_normal_client()
    {
        await using var server = await ServerHarness.StartAsync(o => o.IdleTimeoutBeforeLogin = TimeSpan.FromSeconds(5));
        var random = new Random(5034);
        var hostile = new List<Task>();
        for (var i = 0; i < 8; i++)
        {
            var seed = random.Next();
            hostile.Add(Task.Run(async () =>
            {
                var rng = new Random(seed);
                await using var client = await ConnectAsync(server.PlainPort);
                // Floods of binary, endless lines and bad commands, then a silent hang-up.
                for (var round = 0; round < 20; round++)
                {
                    var junk = new byte[rng.Next(1, 32 * 1024)];
                    rng.NextBytes(junk);
                    try
                    {
                        await client.SendAsync(round % 4 == 0 ? "XXXX\r\nRETR 1\r\nAUTH PLAIN ====\r\n"u8.ToArray() : junk);
                    }
                    catch (IOException)
                    {
                        return; // the server hung up on it: that is the point
                    }
                }
            }));
        }
        // Meanwhile a real client reads everything.
        using var normal = new Pop3Client { Timeout = 20000 };
        await normal.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        await normal.AuthenticateAsync("alice", "secret");
        for (var i = 0; i < server.Mail.Count; i++)
        {
            await using var stream = await normal.GetStreamAsync(i);
            var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            Assert.True(Wire.AsReceived(server.Mail[i].Bytes).AsSpan().SequenceEqual(copy.ToArray()));
        }
        await normal.DisconnectAsync(quit: true);
        await Task.WhenAll(hostile).WaitAsync(TimeSpan.FromSeconds(60));
        await server.WaitForIdleAsync();
        Assert.DoesNotContain(server.Logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
    }

    [Fact]
    public async Task Tls_port_survives_a_client_that_speaks_plaintext()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        await using (var plain = await ConnectAsync(server.TlsPort))
        {
            await plain.SendAsync("USER alice\r\nPASS secret\r\n");
            await plain.ReadToEndAsync();
        }
        using var client = new Pop3Client
        {
            Timeout = 20000,
            CheckCertificateRevocation = false,
            ServerCertificateValidationCallback = (_, c, _, _) => c?.GetCertHashString() == TestCertificates.Localhost.GetCertHashString(),
        };
        await client.ConnectAsync("127.0.0.1", server.TlsPort, SecureSocketOptions.SslOnConnect);
        await client.AuthenticateAsync("alice", "secret");
        Assert.Equal(3, client.Count);
        Assert.DoesNotContain(server.Authenticator.Attempts, a => !a.Connection.IsSecure);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + WireClient.Patience;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20);
        }
    }
}
