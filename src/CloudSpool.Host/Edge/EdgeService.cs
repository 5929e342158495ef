using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudSpool.Edge;
using CloudSpool.Host.Configuration;
using CloudSpool.Pop3;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.Edge;

/// <summary>What the status page shows of a running edge (read-only counters).</summary>
/// <param name="EndPoints">Where it listens.</param>
/// <param name="ActiveSessions">Sessions open now.</param>
/// <param name="SessionsServed">Sessions served since it started.</param>
/// <param name="LastIndexSync">When the last background sync of the mailbox indexes ended without error.</param>
/// <param name="MailboxesIndexed">Mailboxes whose index it holds.</param>
/// <param name="Cache">The local blob cache's figures (null: no cache).</param>
/// <param name="StorageReachable">Whether storage answered its last calls.</param>
internal sealed record EdgeFigures(IReadOnlyList<IPEndPoint> EndPoints, int ActiveSessions, long SessionsServed, DateTimeOffset? LastIndexSync,
    int MailboxesIndexed, CacheFigures? Cache, bool StorageReachable);

/// <summary>The POP3 edge as a hosted service: listens on the configured endpoints and serves the spool.</summary>
/// <param name="runtime">The started runtime (storage, users, views).</param>
/// <param name="required">
/// True for `cloudspool edge`: failing to listen stops the host. False inside `cloudspool run`: the failure is
/// logged and the scheduler keeps pulling mail.
/// </param>
internal sealed class EdgeService(Runtime runtime, bool required) : IHostedService, IAsyncDisposable
{
    private readonly ILogger _logger = runtime.Loggers.CreateLogger<EdgeService>();
    private Pop3Server? _server;
    private SpoolEdge? _spoolEdge;

    /// <summary>The addresses bound (port 0 resolved), once started.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints => _server?.LocalEndPoints ?? [];

    /// <summary>The edge's counters now; null when it is not serving (not started, or it could not listen).</summary>
    public EdgeFigures? Figures()
    {
        if (_server is not { } server || _spoolEdge is not { } edge)
            return null;
        var mirror = edge.Mirror;
        return new EdgeFigures(server.LocalEndPoints, server.ActiveSessions, server.SessionsServed, mirror.LastSyncPass, mirror.Indexes.Count,
            mirror.Cache?.Figures(), !mirror.Health.IsDown);
    }

    /// <summary>SHA-256 fingerprint of the certificate served (as logged), once started.</summary>
    public string? CertificateFingerprint { get; private set; }

    /// <summary>
    /// Server options from the Edge section, with the configured certificate, or the one generated on the first
    /// start and kept in the state directory (see <see cref="EdgeCertificate"/>).
    /// </summary>
    public static Pop3ServerOptions ServerOptions(EdgeOptions edge, X509Certificate2 certificate)
    {
        var options = new Pop3ServerOptions
        {
            MaxSessions = edge.MaxSessions,
            MaxSessionsPerAddress = edge.MaxSessionsPerAddress,
            Certificate = certificate,
            TlsProtocols = Pop3ServerOptions.PinnedTlsProtocols,
        };
        if (edge.PlaintextAuthNetworks is { } networks)
        {
            options.PlaintextAuthNetworks.Clear();
            foreach (var network in networks)
                options.PlaintextAuthNetworks.Add(IPNetwork.Parse(network));
        }
        return options;
    }

    /// <summary>The endpoints from the Edge section: the plain port, and the implicit-TLS port when configured.</summary>
    public static IReadOnlyList<Pop3Endpoint> Endpoints(EdgeOptions edge)
    {
        var address = IPAddress.Parse(edge.Listen);
        var endpoints = new List<Pop3Endpoint> { new(new IPEndPoint(address, edge.Port)) };
        if (edge.ImplicitTlsPort is { } tlsPort)
            endpoints.Add(new Pop3Endpoint(new IPEndPoint(address, tlsPort), ImplicitTls: true));
        return endpoints;
    }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var edge = runtime.Options.Edge;
        try
        {
            var (certificate, origin, path) = EdgeCertificate.Resolve(edge);
            CertificateFingerprint = EdgeCertificate.Fingerprint(certificate);
            switch (origin)
            {
                case EdgeCertificate.Origin.Generated:
                    HostLog.EdgeCertificateGenerated(_logger, path, CertificateFingerprint);
                    break;
                case EdgeCertificate.Origin.Stored:
                    HostLog.EdgeCertificateStored(_logger, path, CertificateFingerprint, certificate.NotAfter.ToUniversalTime());
                    break;
                default:
                    HostLog.EdgeCertificateConfigured(_logger, path, CertificateFingerprint, certificate.NotAfter.ToUniversalTime());
                    break;
            }
            var spoolEdge = runtime.CreateEdge();
            var server = spoolEdge.CreateServer(ServerOptions(edge, certificate));
            try
            {
                await server.StartAsync(Endpoints(edge), cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await server.DisposeAsync().ConfigureAwait(false);
                await spoolEdge.DisposeAsync().ConfigureAwait(false);
                throw;
            }
            spoolEdge.Start();
            _spoolEdge = spoolEdge;
            _server = server;
            foreach (var endPoint in server.LocalEndPoints)
                HostLog.EdgeListening(_logger, endPoint);
        }
        catch (Exception ex) when (ex is SocketException or CryptographicException or IOException or ArgumentException or InvalidOperationException)
        {
            if (required)
                throw;
            HostLog.EdgeNotListening(_logger, ex, edge.Listen, edge.Port);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is { } server)
        {
            _server = null;
            await server.StopAsync(cancellationToken).ConfigureAwait(false);
            await server.DisposeAsync().ConfigureAwait(false);
            HostLog.EdgeStopped(_logger);
        }
        if (_spoolEdge is { } spoolEdge)
        {
            _spoolEdge = null;
            await spoolEdge.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);
}
