using CloudSpool.Core.Edge;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

public sealed class EdgeConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudspool-edge-config-").FullName;

    private string Write(string json)
    {
        var path = Path.Combine(_dir, "cloudspool.json");
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void Edge_defaults_listen_on_loopback_port_1110()
    {
        var edge = ConfigLoader.Load(null).Edge;
        Assert.True(edge.Enabled);
        Assert.Equal(("127.0.0.1", 1110, 100, 10), (edge.Listen, edge.Port, edge.MaxSessions, edge.MaxSessionsPerAddress));
        Assert.Null(edge.PlaintextAuthNetworks);
        Assert.Null(edge.StateDirectory);
    }

    [Fact]
    public void An_implicit_tls_port_needs_no_configured_certificate_since_the_edge_generates_one()
    {
        var edge = ConfigLoader.Load(Write("""{ "Edge": { "ImplicitTlsPort": 1995, "StateDirectory": "/var/lib/cloudspool/edge" } }""")).Edge;
        Assert.Equal((1995, "/var/lib/cloudspool/edge"), (edge.ImplicitTlsPort, edge.StateDirectory));
    }

    [Fact]
    public void Edge_settings_are_bound_and_every_wrong_value_is_reported()
    {
        var ok = ConfigLoader.Load(Write("""{ "Edge": { "Listen": "0.0.0.0", "Port": 2110, "PlaintextAuthNetworks": [ "192.168.1.0/24" ] } }""")).Edge;
        Assert.Equal(["192.168.1.0/24"], ok.PlaintextAuthNetworks!);

        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""
            { "Edge": { "Listen": "localhost", "Port": 70000, "ImplicitTlsPort": 995, "PlaintextAuthNetworks": [ "lan" ], "MaxSessions": 0, "Portt": 1 } }
            """)));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:Portt: unknown setting", StringComparison.Ordinal));

        ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""
            { "Edge": { "Listen": "localhost", "Port": 70000, "ImplicitTlsPort": 995, "CertificatePath": "/nonexistent/edge.pem", "PlaintextAuthNetworks": [ "lan" ], "MaxSessions": 0, "StateDirectory": " " } }
            """)));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:Listen:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:Port:", StringComparison.Ordinal));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:CertificatePath:", StringComparison.Ordinal) && p.Contains("certificate"));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:StateDirectory:", StringComparison.Ordinal) && p.Contains("directory"));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:PlaintextAuthNetworks", StringComparison.Ordinal) && p.Contains("CIDR"));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:MaxSessions:", StringComparison.Ordinal));
    }

    [Fact]
    public void The_share_of_sessions_per_address_is_bound_checked_and_reaches_the_server()
    {
        var edge = ConfigLoader.Load(Write("""{ "Edge": { "MaxSessions": 50, "MaxSessionsPerAddress": 4 } }""")).Edge;
        Assert.Equal((50, 4), (edge.MaxSessions, edge.MaxSessionsPerAddress));
        using var key = System.Security.Cryptography.ECDsa.Create();
        using var certificate = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=t", key, System.Security.Cryptography.HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var server = CloudSpool.Host.Edge.EdgeService.ServerOptions(edge, certificate);
        Assert.Equal((50, 4), (server.MaxSessions, server.MaxSessionsPerAddress));
        Assert.Equal(System.Security.Authentication.SslProtocols.Tls12 | System.Security.Authentication.SslProtocols.Tls13, server.TlsProtocols);

        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""{ "Edge": { "MaxSessionsPerAddress": 0 } }""")));
        Assert.Contains(ex.Problems, p => p.StartsWith("Edge:MaxSessionsPerAddress:", StringComparison.Ordinal));
    }

    [Fact]
    public void Edge_index_and_cache_settings_are_bound_and_checked()
    {
        var ok = ConfigLoader.Load(Write("""
            { "Edge": { "StateDirectory": "/var/lib/cloudspool", "CacheMegabytes": 0, "SyncInterval": "00:00:02", "ReconcileInterval": "00:30:00",
                        "Lookback": "00:00:00", "Prefetch": false, "SharedDeleteMailboxes": [ "family" ] } }
            """)).Edge;
        Assert.Equal(("/var/lib/cloudspool", 0, TimeSpan.FromSeconds(2), TimeSpan.FromMinutes(30), TimeSpan.Zero, false),
            (ok.StateDirectory, ok.CacheMegabytes, ok.SyncInterval, ok.ReconcileInterval, ok.Lookback, ok.Prefetch));
        Assert.Equal(["family"], ok.SharedDeleteMailboxes);

        var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write("""
            { "Edge": { "CacheMegabytes": -1, "CacheDiskPercent": 0, "CacheReserveMegabytes": -1, "SyncInterval": "00:00:00", "ReconcileInterval": "00:00:00",
                        "Lookback": "-00:00:05", "SharedDeleteMailboxes": [ "" ] } }
            """)));
        foreach (var key in new[] { "CacheMegabytes", "CacheDiskPercent", "CacheReserveMegabytes", "SyncInterval", "ReconcileInterval", "Lookback", "SharedDeleteMailboxes" })
            Assert.Contains(ex.Problems, p => p.StartsWith("Edge:" + key, StringComparison.Ordinal));

        // By default the cache is sized by the disk: half of it, 2 GiB always left free.
        var sized = ConfigLoader.Load(Write("""{ "Edge": { } }""")).Edge;
        Assert.Equal((null, 50, 2048), (sized.CacheMegabytes, sized.CacheDiskPercent, sized.CacheReserveMegabytes));
    }

    [Fact]
    public void Read_ahead_depth_and_fetches_are_bound_and_checked()
    {
        var defaults = ConfigLoader.Load(Write("""{ "Edge": { } }""")).Edge;
        Assert.Equal((16, 8), (defaults.ReadAheadMessages, defaults.ReadAheadFetches));
        Assert.Equal((16, 8), (new CloudSpool.Edge.SpoolEdgeOptions().ReadAheadMessages, new CloudSpool.Edge.SpoolEdgeOptions().ReadAheadFetches));

        var set = ConfigLoader.Load(Write("""{ "Edge": { "ReadAheadMessages": 32, "ReadAheadFetches": 12 } }""")).Edge;
        Assert.Equal((32, 12), (set.ReadAheadMessages, set.ReadAheadFetches));

        foreach (var fetches in new[] { 0, 33 })
        {
            var ex = Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write($$"""{ "Edge": { "ReadAheadFetches": {{fetches}} } }""")));
            Assert.Contains(ex.Problems, p => p.StartsWith("Edge:ReadAheadFetches:", StringComparison.Ordinal) && p.Contains("1-32", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("alice", true, "alice", "alice")]
    [InlineData("Alice+Laptop", true, "alice", "alice+laptop")]
    [InlineData("alice+", false, null, null)]
    [InlineData("+laptop", false, null, null)]
    [InlineData("alice+lap+top", false, null, null)]
    [InlineData("al!ce", false, null, null)]
    [InlineData("alice+x\n", false, null, null)] // "$" let a final line feed through: a client identity of its own
    [InlineData("alice\n", false, null, null)]
    [InlineData("alice+x\r", false, null, null)]
    [InlineData("\u212Aate", false, null, null)] // KELVIN SIGN folds to "k": not an alias of kate
    [InlineData("al\u0130ce", false, null, null)]
    public void Login_names_split_into_user_and_client_identity(string login, bool valid, string? user, string? client)
    {
        Assert.Equal(valid, Pop3Names.TryParseLogin(login, out var u, out var c));
        if (valid)
            Assert.Equal((user, client), (u, c));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
