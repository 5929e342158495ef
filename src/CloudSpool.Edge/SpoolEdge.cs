using CloudSpool.Core.Edge;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Spool;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// The POP3 edge's adapters wired together: users, per-client views, and the local mirror of the spool (index and
/// blob cache) behind the POP3 server library.
/// </summary>
public sealed class SpoolEdge : IAsyncDisposable
{
    private readonly ILoggerFactory _loggers;

    /// <summary>Wires the edge; <paramref name="leases"/> (null: within this process only) keeps one session per client identity across edge processes.</summary>
    public SpoolEdge(IPop3UserStore users, IClientViewStore views, ISpoolReader spool, ILeaseManager? leases, SpoolEdgeOptions options, ILoggerFactory loggers, TimeProvider? clock = null)
    {
        ArgumentNullException.ThrowIfNull(loggers);
        ArgumentNullException.ThrowIfNull(options);
        _loggers = loggers;
        Mirror = new SpoolMirror(spool, users, options, loggers.CreateLogger<SpoolMirror>(), clock);
        Authenticator = new SpoolAuthenticator(users, Mirror, loggers.CreateLogger<SpoolAuthenticator>());
        Maildrops = new SpoolMaildropProvider(Mirror, views, leases, options, loggers.CreateLogger<SpoolMaildropProvider>());
    }

    public SpoolAuthenticator Authenticator { get; }
    public SpoolMaildropProvider Maildrops { get; }
    public SpoolMirror Mirror { get; }

    /// <summary>Starts keeping the local index and cache fresh in the background.</summary>
    public void Start() => Mirror.Start();

    /// <summary>A POP3 server over the spool; nothing listens until it is started.</summary>
    public Pop3Server CreateServer(Pop3ServerOptions options) => new(options, Authenticator, Maildrops, _loggers);

    public ValueTask DisposeAsync() => Mirror.DisposeAsync();
}
