using CloudSpool.Pop3.Tests.Support;
using MailKit.Net.Pop3;
using MailKit.Security;

namespace CloudSpool.Pop3.Tests;

/// <summary>MailKit's Pop3Client against the server over real sockets on 127.0.0.1: plain, STLS and implicit TLS.</summary>
public sealed class MailKitClientTests
{
    private static Pop3Client NewClient()
    {
        var thumbprint = TestCertificates.Localhost.GetCertHashString();
        return new Pop3Client
        {
            Timeout = 20000,
            CheckCertificateRevocation = false,
            ServerCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == thumbprint,
        };
    }

    private static async Task<byte[]> ReadAllAsync(Stream stream)
    {
        await using (stream)
        {
            var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer);
            return buffer.ToArray();
        }
    }

    /// <summary>STAT, LIST, UIDL, RETR and TOP of the whole corpus, byte-exact; then DELE of two and QUIT.</summary>
    private static async Task ReadEverythingAndDeleteTwoAsync(ServerHarness server, Pop3Client client)
    {
        var mail = server.Mail;
        Assert.Equal(mail.Count, client.Count);
        Assert.Equal(mail.Select(m => (int)m.Pop3Size), await client.GetMessageSizesAsync());
        Assert.Equal(mail.Select(m => m.Uidl), await client.GetMessageUidsAsync());
        for (var i = 0; i < mail.Count; i++)
        {
            Assert.Equal(mail[i].Pop3Size, await client.GetMessageSizeAsync(i));
            var received = await ReadAllAsync(await client.GetStreamAsync(i));
            Assert.True(Wire.AsReceived(mail[i].Bytes).AsSpan().SequenceEqual(received), "RETR " + mail[i].Uidl);
            var headers = await ReadAllAsync(await client.GetStreamAsync(i, headersOnly: true));
            Assert.True(Wire.Unstuff(Wire.TopData(mail[i].Bytes, 0)).AsSpan().SequenceEqual(headers), "TOP " + mail[i].Uidl);
        }
        await client.DeleteMessageAsync(0);
        await client.DeleteMessageAsync(mail.Count - 1);
        await client.DisconnectAsync(quit: true);
        await server.WaitForIdleAsync();
        Assert.Equal(mail.Skip(1).SkipLast(1).Select(m => m.Uidl), server.Maildrops.Mailbox("alice").Select(m => m.Uidl));
    }

    [Fact]
    public async Task MailKit_reads_the_whole_corpus_byte_exact_over_plain_pop3_and_deletes_at_quit()
    {
        await using var server = await ServerHarness.StartAsync();
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        Assert.True(client.Capabilities.HasFlag(Pop3Capabilities.Pipelining));
        Assert.True(client.Capabilities.HasFlag(Pop3Capabilities.UIDL));
        Assert.True(client.Capabilities.HasFlag(Pop3Capabilities.Top));
        Assert.True(client.Capabilities.HasFlag(Pop3Capabilities.StartTLS));
        Assert.Equal("CloudSpool", client.Implementation);
        await client.AuthenticateAsync("alice", "secret");
        await ReadEverythingAndDeleteTwoAsync(server, client);
        Assert.Equal(Pop3AuthMechanism.Plain, Assert.Single(server.Authenticator.Attempts).Mechanism);
    }

    [Fact]
    public async Task MailKit_over_stls_logs_in_where_plaintext_is_refused_and_reads_byte_exact()
    {
        await using var server = await ServerHarness.StartAsync(o => o.PlaintextAuthNetworks.Clear());
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.StartTls);
        Assert.True(client.IsSecure);
        await client.AuthenticateAsync("alice", "secret");
        await ReadEverythingAndDeleteTwoAsync(server, client);
        Assert.True(Assert.Single(server.Authenticator.Attempts).Connection.IsSecure);
    }

    [Fact]
    public async Task MailKit_over_implicit_tls_reads_byte_exact()
    {
        await using var server = await ServerHarness.StartAsync(o => o.PlaintextAuthNetworks.Clear());
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.TlsPort, SecureSocketOptions.SslOnConnect);
        Assert.True(client.IsSecure);
        Assert.False(client.Capabilities.HasFlag(Pop3Capabilities.StartTLS));
        await client.AuthenticateAsync("alice", "secret");
        await ReadEverythingAndDeleteTwoAsync(server, client);
    }

    [Fact]
    public async Task MailKit_without_tls_is_refused_a_plaintext_login_from_an_untrusted_network()
    {
        await using var server = await ServerHarness.StartAsync(o => o.PlaintextAuthNetworks.Clear());
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        Assert.DoesNotContain("PLAIN", client.AuthenticationMechanisms);
        // MailKit still tries USER (RFC 1939 makes it the default); the server refuses it before any password is sent.
        await Assert.ThrowsAsync<AuthenticationException>(() => client.AuthenticateAsync("alice", "secret"));
        Assert.Empty(server.Authenticator.Attempts);
    }

    [Fact]
    public async Task MailKit_logs_in_with_user_and_pass_when_sasl_is_not_used()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        client.AuthenticationMechanisms.Clear();
        await client.AuthenticateAsync("alice", "secret");
        Assert.Equal(3, client.Count);
        Assert.Equal(Pop3AuthMechanism.UserPass, Assert.Single(server.Authenticator.Attempts).Mechanism);
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task MailKit_logs_in_with_apop_when_the_authenticator_supports_it()
    {
        var authenticator = new FakeAuthenticator(("alice", "secret")) { SupportsApop = true };
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail, authenticator: authenticator);
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        Assert.True(client.Capabilities.HasFlag(Pop3Capabilities.Apop));
        await client.AuthenticateAsync("alice", "secret");
        Assert.Equal(3, client.Count);
        Assert.Equal(["alice"], authenticator.ApopAttempts);
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task MailKit_wrong_password_fails_with_an_authentication_error()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        await Assert.ThrowsAsync<AuthenticationException>(() => client.AuthenticateAsync("alice", "wrong"));
    }

    [Fact]
    public async Task MailKit_pipelined_retrieval_of_many_messages_is_byte_exact()
    {
        await using var server = await ServerHarness.StartAsync();
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        await client.AuthenticateAsync("alice", "secret");
        var indexes = Enumerable.Range(0, server.Mail.Count).ToList();
        var streams = await client.GetStreamsAsync(indexes);
        for (var i = 0; i < indexes.Count; i++)
        {
            var received = await ReadAllAsync(streams[i]);
            Assert.True(Wire.AsReceived(server.Mail[i].Bytes).AsSpan().SequenceEqual(received), server.Mail[i].Uidl);
        }
        await client.DeleteMessagesAsync(indexes);
        await client.DisconnectAsync(quit: true);
        await server.WaitForIdleAsync();
        Assert.Empty(server.Maildrops.Mailbox("alice"));
    }

    [Fact]
    public async Task MailKit_disconnect_without_quit_deletes_nothing()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        using var client = NewClient();
        await client.ConnectAsync("127.0.0.1", server.PlainPort, SecureSocketOptions.None);
        await client.AuthenticateAsync("alice", "secret");
        await client.DeleteMessageAsync(0);
        await client.DisconnectAsync(quit: false);
        await server.WaitForIdleAsync();
        Assert.Equal(3, server.Maildrops.Mailbox("alice").Count);
        Assert.Empty(Assert.Single(server.Maildrops.Opened).Commits);
    }
}
