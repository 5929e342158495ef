using System.Text;
using CloudSpool.Pop3.Tests.Support;
using CloudSpool.TestSupport;

namespace CloudSpool.Pop3.Tests;

/// <summary>curl and mpop against the server over real sockets on 127.0.0.1.</summary>
public sealed class CommandLineClientTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cloudspool-pop3-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static async Task<byte[]> CurlAsync(params string[] arguments)
    {
        var (exit, stdout, stderr) = await ExternalTool.RunAsync("curl", ["--silent", "--show-error", "--max-time", "30", .. arguments]);
        Assert.True(exit == 0, "curl exit " + exit + ": " + stderr);
        return stdout;
    }

    [Fact]
    public async Task Curl_retrieves_every_corpus_message_byte_exact()
    {
        await using var server = await ServerHarness.StartAsync();
        for (var i = 0; i < server.Mail.Count; i++)
        {
            var body = await CurlAsync($"pop3://127.0.0.1:{server.PlainPort}/{i + 1}", "-u", "alice:secret");
            Assert.True(Wire.AsReceived(server.Mail[i].Bytes).AsSpan().SequenceEqual(body), server.Mail[i].Uidl);
        }
    }

    [Fact]
    public async Task Curl_lists_the_maildrop_and_one_message()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        var list = Encoding.ASCII.GetString(await CurlAsync($"pop3://127.0.0.1:{server.PlainPort}/", "-u", "alice:secret"));
        Assert.Equal("1 23\r\n2 30\r\n3 29\r\n", list);
        var (exit, _, verbose) = await ExternalTool.RunAsync("curl", "--verbose", "--max-time", "30",
            $"pop3://127.0.0.1:{server.PlainPort}/2", "--list-only", "-u", "alice:secret");
        // curl prints only multi-line bodies; the single-line LIST answer shows in its protocol trace.
        Assert.Equal(0, exit);
        Assert.Contains("> LIST 2\r\n< +OK 2 30\r\n", verbose.ReplaceLineEndings("\r\n"));
    }

    [Fact]
    public async Task Curl_dele_removes_the_message_at_quit()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        await CurlAsync($"pop3://127.0.0.1:{server.PlainPort}/2", "-u", "alice:secret", "-X", "DELE", "-I");
        await server.WaitForIdleAsync();
        Assert.Equal(["uid-one", "uid-three"], server.Maildrops.Mailbox("alice").Select(m => m.Uidl));
    }

    [Fact]
    public async Task Curl_over_stls_and_implicit_tls_retrieves_byte_exact()
    {
        await using var server = await ServerHarness.StartAsync(o => o.PlaintextAuthNetworks.Clear());
        var pem = TestCertificates.WritePem(_directory);
        var index = server.Mail.FindIndex(m => m.Bytes.Length > 100_000);
        var expected = Wire.AsReceived(server.Mail[index].Bytes);
        var viaStls = await CurlAsync($"pop3://127.0.0.1:{server.PlainPort}/{index + 1}", "--ssl-reqd", "--cacert", pem, "-u", "alice:secret");
        Assert.True(expected.AsSpan().SequenceEqual(viaStls));
        var viaTls = await CurlAsync($"pop3s://127.0.0.1:{server.TlsPort}/{index + 1}", "--cacert", pem, "-u", "alice:secret");
        Assert.True(expected.AsSpan().SequenceEqual(viaTls));
        Assert.All(server.Authenticator.Attempts, a => Assert.True(a.Connection.IsSecure));
    }

    [Fact]
    public async Task Curl_with_a_wrong_password_fails_cleanly()
    {
        await using var server = await ServerHarness.StartAsync(mail: SessionHarness.Mail);
        var (exit, _, _) = await ExternalTool.RunAsync("curl", "--silent", "--max-time", "30", $"pop3://127.0.0.1:{server.PlainPort}/1", "-u", "alice:wrong");
        Assert.Equal(67, exit); // CURLE_LOGIN_DENIED
    }

    [Fact]
    public async Task Mpop_over_stls_fetches_the_whole_corpus_into_a_maildir_and_deletes_it()
    {
        await using var server = await ServerHarness.StartAsync(o => o.PlaintextAuthNetworks.Clear());
        var pem = TestCertificates.WritePem(_directory);
        var maildir = Path.Combine(_directory, "Maildir");
        foreach (var sub in new[] { "tmp", "new", "cur" })
            Directory.CreateDirectory(Path.Combine(maildir, sub));
        var config = Path.Combine(_directory, "mpoprc");
        await File.WriteAllTextAsync(config, $"""
            defaults
            tls on
            tls_starttls on
            tls_trust_file {pem}
            auth plain
            received_header off
            keep off
            uidls_file {Path.Combine(_directory, "uidls")}

            account test
            host 127.0.0.1
            port {server.PlainPort}
            user alice
            password secret
            delivery maildir {maildir}
            """);
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var (exit, stdout, stderr) = await ExternalTool.RunAsync("mpop", "--file=" + config, "--quiet", "test");
        Assert.True(exit == 0, "mpop exit " + exit + ": " + stderr + Encoding.UTF8.GetString(stdout));

        // mpop stores each message with LF line ends (the CRLFs of the wire undone).
        var delivered = Directory.GetFiles(Path.Combine(maildir, "new"))
            .Select(f => Wire.Text(File.ReadAllBytes(f))).Order(StringComparer.Ordinal).ToList();
        var expected = server.Mail
            .Select(m => Wire.Text(Wire.AsReceived(m.Bytes)).Replace("\r\n", "\n", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal).ToList();
        Assert.Equal(expected.Count, delivered.Count);
        for (var i = 0; i < expected.Count; i++)
            Assert.True(expected[i] == delivered[i], "message " + i + " differs");
        await server.WaitForIdleAsync();
        Assert.Empty(server.Maildrops.Mailbox("alice"));
    }
}
