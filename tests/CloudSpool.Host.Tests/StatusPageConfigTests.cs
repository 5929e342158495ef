using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

public sealed class StatusPageConfigTests : ConfigFileTest
{
    [Fact]
    public void The_page_is_on_by_default_on_loopback_port_8110_and_nobody_may_log_in()
    {
        var page = ConfigLoader.Load(null).StatusPage;
        Assert.True(page.Enabled);
        Assert.Equal(("127.0.0.1", 8110, TimeSpan.FromSeconds(30)), (page.Listen, page.Port, page.RefreshInterval));
        Assert.Empty(page.Users);
    }

    [Fact]
    public void Https_is_pinned_to_tls_1_2_and_1_3_as_the_edge_and_the_upstream_client_are()
    {
        using var key = System.Security.Cryptography.ECDsa.Create();
        using var certificate = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=t", key, System.Security.Cryptography.HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var https = CloudSpool.Host.StatusPage.StatusPageService.HttpsOptions(certificate);
        Assert.Same(certificate, https.ServerCertificate);
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13, https.SslProtocols);
    }

    [Fact]
    public void Status_page_settings_are_bound_and_every_wrong_value_is_reported()
    {
        var ok = ConfigLoader.Load(Write("""{ "StatusPage": { "Listen": "0.0.0.0", "Port": 9000, "Users": [ "alice", "bob.smith" ], "RecentMessages": 5 } }""")).StatusPage;
        Assert.Equal(["alice", "bob.smith"], ok.Users);
        Assert.Equal((9000, 5), (ok.Port, ok.RecentMessages));

        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""
            { "Edge": { "Port": 2110 }, "StatusPage": { "Listen": "my-host", "Port": 2110, "Users": [ "Alice Smith" ], "RefreshInterval": "00:00:00", "RecentMessages": 1000 } }
            """)));
        Assert.Contains(ex.Problems, p => p.StartsWith("StatusPage:Listen:", StringComparison.Ordinal) && p.Contains("IP address"));
        Assert.Contains(ex.Problems, p => p.StartsWith("StatusPage:Port:", StringComparison.Ordinal) && p.Contains("Edge:Port"));
        Assert.Contains(ex.Problems, p => p.StartsWith("StatusPage:Users", StringComparison.Ordinal) && p.Contains("'Alice Smith'"));
        Assert.Contains(ex.Problems, p => p.StartsWith("StatusPage:RefreshInterval:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("StatusPage:RecentMessages:", StringComparison.Ordinal));
        var misspelt = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""{ "StatusPage": { "User": [ "alice" ] } }""")));
        Assert.Contains(misspelt.Problems, p => p.StartsWith("StatusPage:User: unknown setting", StringComparison.Ordinal));
    }
}
