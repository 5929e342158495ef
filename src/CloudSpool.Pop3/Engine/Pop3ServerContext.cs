using System.Net;
using System.Net.Security;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Pop3.Engine;

/// <summary>What every session of a server shares: settings and ports. Immutable after construction.</summary>
internal sealed class Pop3ServerContext
{
    /// <summary>The server's name in the greeting, QUIT and CAPA IMPLEMENTATION (RFC 2449 section 6.9).</summary>
    public const string Implementation = "CloudSpool";

    private readonly IPNetwork[] _plaintextNetworks;

    public Pop3ServerContext(
        Pop3ServerOptions options, IPop3Authenticator authenticator, IMaildropProvider maildrops, ILogger logger)
    {
        Options = options;
        Authenticator = authenticator;
        Maildrops = maildrops;
        Logger = logger;
        _plaintextNetworks = [.. options.PlaintextAuthNetworks];
        ApopEnabled = authenticator.SupportsApop;
        LoginPenalties = new LoginThrottle(new LoginThrottleOptions
        {
            FailureDelay = options.FailedLoginDelay,
            MaxFailureDelay = options.MaxFailedLoginDelay,
            Window = options.FailedLoginWindow,
            MaxFailures = options.MaxFailedLogins,
            Lockout = options.FailedLoginLockout,
            TimeProvider = options.TimeProvider,
        });
        if (options.Certificate is { } certificate)
        {
            TlsOptions = new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                EnabledSslProtocols = options.TlsProtocols,
                ClientCertificateRequired = false,
            };
        }
    }

    public Pop3ServerOptions Options { get; }
    public IPop3Authenticator Authenticator { get; }
    public IMaildropProvider Maildrops { get; }
    public ILogger Logger { get; }

    /// <summary>Failed logins per remote address (bucketed by user name), shared by every session.</summary>
    public LoginThrottle LoginPenalties { get; }

    /// <summary>Read once: the greeting's timestamp and the APOP row depend on it for the server's lifetime.</summary>
    public bool ApopEnabled { get; }

    /// <summary>Handshake settings; null without a certificate.</summary>
    public SslServerAuthenticationOptions? TlsOptions { get; }

    /// <summary>True when a client at <paramref name="remote"/> may send a password without TLS.</summary>
    public bool IsPlaintextAllowedFrom(IPEndPoint? remote)
    {
        if (remote is null)
            return false;
        var address = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        foreach (var network in _plaintextNetworks)
        {
            if (network.Contains(address))
                return true;
        }
        return false;
    }
}
