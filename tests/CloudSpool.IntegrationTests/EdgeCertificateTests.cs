using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;
using CloudSpool.Host.Configuration;
using CloudSpool.Host.Edge;
using CloudSpool.TestSupport;
using CloudSpool.TestSupport.Fixtures;
using MailKit.Net.Pop3;
using MailKit.Security;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The edge's TLS certificate: generated once into the state directory when none is configured, reused on later
/// starts, served on STLS and the implicit-TLS port, and pinned by fingerprint in a real client (MailKit).
/// </summary>
public sealed class EdgeCertificateTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private readonly string _state = Path.Combine(Directory.CreateTempSubdirectory("cloudspool-edge-state-").FullName, "edge");
    private PullHarness _spool = null!;

    public async Task InitializeAsync()
    {
        _spool = await PullHarness.StartAsync();
        _spool.Runtime.Options.Edge = new EdgeOptions { Port = 0, ImplicitTlsPort = 0, StateDirectory = _state };
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("secret")), CancellationToken.None));
        await _spool.PutAsync("alice", TestMail.Create("over TLS", bodyBytes: 30_000));
    }

    public async Task DisposeAsync()
    {
        await _spool.DisposeAsync();
        Directory.Delete(Path.GetDirectoryName(_state)!, recursive: true);
    }

    private string CertificateFile => Path.Combine(_state, EdgeCertificate.CertificateFileName);
    private string KeyFile => Path.Combine(_state, EdgeCertificate.KeyFileName);

    /// <summary>Logs in over TLS accepting only the pinned fingerprint; returns the fingerprint the server presented.</summary>
    private static async Task<string> RetrieveOverTlsAsync(IPEndPoint endPoint, SecureSocketOptions tls, string pinned)
    {
        using var timeout = new CancellationTokenSource(Bound);
        string? seen = null;
        using var client = new Pop3Client { Timeout = (int)Bound.TotalMilliseconds, CheckCertificateRevocation = false };
        client.ServerCertificateValidationCallback = (_, certificate, _, _) =>
        {
            using var presented = X509CertificateLoader.LoadCertificate(certificate!.GetRawCertData());
            seen = EdgeCertificate.Fingerprint(presented);
            return seen == pinned;
        };
        await client.ConnectAsync("127.0.0.1", endPoint.Port, tls, timeout.Token);
        Assert.True(client.IsSecure);
        await client.AuthenticateAsync("alice", "secret", timeout.Token);
        Assert.Equal(1, client.Count);
        Assert.Equal("over TLS", (await client.GetMessageAsync(0, timeout.Token)).Subject);
        await client.DisconnectAsync(quit: true, timeout.Token);
        return seen!;
    }

    [Fact]
    public async Task The_first_start_generates_a_certificate_that_later_starts_reuse_and_clients_can_pin()
    {
        string fingerprint;
        await using (var first = new EdgeService(_spool.Runtime, required: true))
        {
            await first.StartAsync(CancellationToken.None);
            fingerprint = first.CertificateFingerprint!;
            Assert.Matches("^([0-9A-F]{2}:){31}[0-9A-F]{2}$", fingerprint);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(KeyFile));
            Assert.Equal(0, (int)(File.GetUnixFileMode(_state) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)));

            Assert.Equal(2, first.LocalEndPoints.Count);
            Assert.Equal(fingerprint, await RetrieveOverTlsAsync(first.LocalEndPoints[0], SecureSocketOptions.StartTls, fingerprint));
            Assert.Equal(fingerprint, await RetrieveOverTlsAsync(first.LocalEndPoints[1], SecureSocketOptions.SslOnConnect, fingerprint));
        }

        var stored = File.ReadAllBytes(CertificateFile);
        await using (var second = new EdgeService(_spool.Runtime, required: true))
        {
            await second.StartAsync(CancellationToken.None);
            Assert.Equal(fingerprint, second.CertificateFingerprint);
            Assert.Equal(fingerprint, await RetrieveOverTlsAsync(second.LocalEndPoints[1], SecureSocketOptions.SslOnConnect, fingerprint));
        }
        Assert.Equal(stored, File.ReadAllBytes(CertificateFile));

        // A client that pinned another fingerprint refuses the server.
        await using var third = new EdgeService(_spool.Runtime, required: true);
        await third.StartAsync(CancellationToken.None);
        await Assert.ThrowsAsync<SslHandshakeException>(() => RetrieveOverTlsAsync(third.LocalEndPoints[1], SecureSocketOptions.SslOnConnect, new string('0', 95)));
    }

    [Fact]
    public async Task Mpop_pinning_the_logged_fingerprint_retrieves_over_stls_and_refuses_another()
    {
        await using var edge = new EdgeService(_spool.Runtime, required: true);
        await edge.StartAsync(CancellationToken.None);
        var directory = Path.GetDirectoryName(_state)!;
        var maildir = Path.Combine(directory, "Maildir");
        foreach (var sub in new[] { "new", "cur", "tmp" })
            Directory.CreateDirectory(Path.Combine(maildir, sub));

        async Task<(int ExitCode, string Output)> MpopAsync(string fingerprint)
        {
            // mpop's tls_fingerprint is the SHA-256 of the certificate in the same colon-separated form the edge logs.
            var config = Path.Combine(directory, "mpoprc");
            await File.WriteAllTextAsync(config, $"""
                defaults
                tls on
                tls_starttls on
                tls_fingerprint {fingerprint}
                auth user
                received_header off
                keep on
                uidls_file {Path.Combine(directory, "uidls")}

                account edge
                host 127.0.0.1
                port {edge.LocalEndPoints[0].Port}
                user alice+mpop
                password secret
                delivery maildir {maildir}
                """);
            File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var (exit, stdout, stderr) = await ExternalTool.RunAsync("mpop", "--file=" + config, "--quiet", "edge");
            return (exit, stderr + System.Text.Encoding.UTF8.GetString(stdout));
        }

        var refused = await MpopAsync(string.Join(':', Enumerable.Repeat("00", 32)));
        Assert.True(refused.ExitCode != 0, "mpop accepted a certificate it did not pin: " + refused.Output);
        Assert.Empty(Directory.GetFiles(Path.Combine(maildir, "new")));

        var pinned = await MpopAsync(edge.CertificateFingerprint!);
        Assert.True(pinned.ExitCode == 0, $"mpop exit {pinned.ExitCode}: {pinned.Output}");
        var delivered = Assert.Single(Directory.GetFiles(Path.Combine(maildir, "new")));
        Assert.Contains("Subject: over TLS", await File.ReadAllTextAsync(delivered), StringComparison.Ordinal);
    }

    [Fact]
    public void The_generated_certificate_names_this_machine_localhost_loopback_and_the_listen_address()
    {
        var (certificate, generated) = EdgeCertificate.LoadOrCreate(_state, IPAddress.Parse("192.0.2.7"));
        var thumbprint = certificate.Thumbprint;
        using (certificate)
        {
            Assert.True(generated);
            Assert.True(certificate.HasPrivateKey);
            var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
            Assert.Equal(
                new[] { Environment.MachineName, "localhost" }.Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase),
                names.EnumerateDnsNames().Order(StringComparer.OrdinalIgnoreCase));
            Assert.Equal(
                new[] { "127.0.0.1", "192.0.2.7", "::1" },
                names.EnumerateIPAddresses().Select(a => a.ToString()).Order(StringComparer.Ordinal));
            Assert.True(certificate.NotAfter > DateTime.UtcNow.AddYears(5));
            Assert.Contains("BEGIN PRIVATE KEY", File.ReadAllText(KeyFile), StringComparison.Ordinal);
        }
        var (again, generatedAgain) = EdgeCertificate.LoadOrCreate(_state, IPAddress.Loopback);
        using (again)
        {
            Assert.False(generatedAgain);
            Assert.Equal(thumbprint, again.Thumbprint);
        }
    }

    [Fact]
    public async Task A_corrupt_stored_certificate_stops_cloudspool_edge_with_a_clear_error()
    {
        Directory.CreateDirectory(_state);
        File.WriteAllText(CertificateFile, "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");
        File.WriteAllText(KeyFile, "garbage");

        await using var required = new EdgeService(_spool.Runtime, required: true);
        var error = await Assert.ThrowsAsync<CryptographicException>(() => required.StartAsync(CancellationToken.None));
        Assert.Contains(CertificateFile, error.Message, StringComparison.Ordinal);
        Assert.Contains("delete both files", error.Message, StringComparison.Ordinal);
        Assert.Empty(required.LocalEndPoints);

        // Inside `cloudspool run` the same failure is logged and the jobs keep running.
        await using var optional = new EdgeService(_spool.Runtime, required: false);
        await optional.StartAsync(CancellationToken.None);
        Assert.Empty(optional.LocalEndPoints);

        // The files are left for the user to look at: nothing is overwritten behind their back.
        Assert.Equal("garbage", File.ReadAllText(KeyFile));
    }

    [Fact]
    public async Task A_configured_certificate_wins_and_nothing_is_generated()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=configured.example", key, HashAlgorithmName.SHA256);
        using var configured = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var directory = Path.GetDirectoryName(_state)!;
        var certificatePath = Path.Combine(directory, "configured.pem");
        var keyPath = Path.Combine(directory, "configured-key.pem");
        File.WriteAllText(certificatePath, configured.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        _spool.Runtime.Options.Edge.CertificatePath = certificatePath;
        _spool.Runtime.Options.Edge.KeyPath = keyPath;

        await using var edge = new EdgeService(_spool.Runtime, required: true);
        await edge.StartAsync(CancellationToken.None);
        var expected = EdgeCertificate.Fingerprint(configured);
        Assert.Equal(expected, edge.CertificateFingerprint);
        Assert.Equal(expected, await RetrieveOverTlsAsync(edge.LocalEndPoints[0], SecureSocketOptions.StartTls, expected));
        Assert.False(File.Exists(CertificateFile));
        Assert.False(File.Exists(KeyFile));
    }
}
