using CloudSpool.Core.Edge;
using CloudSpool.Core.Spool;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>The POP3 edge's adapters wired together: users, per-client views and the spool behind the POP3 server library.</summary>
public sealed class SpoolEdge
{
    private readonly ILoggerFactory _loggers;

    public SpoolEdge(IPop3UserStore users, IClientViewStore views, ISpoolReader spool, ILoggerFactory loggers)
    {
        ArgumentNullException.ThrowIfNull(loggers);
        _loggers = loggers;
        Authenticator = new SpoolAuthenticator(users, loggers.CreateLogger<SpoolAuthenticator>());
        Maildrops = new SpoolMaildropProvider(spool, views, loggers.CreateLogger<SpoolMaildropProvider>());
    }

    public SpoolAuthenticator Authenticator { get; }
    public SpoolMaildropProvider Maildrops { get; }

    /// <summary>A POP3 server over the spool; nothing listens until it is started.</summary>
    public Pop3Server CreateServer(Pop3ServerOptions options) => new(options, Authenticator, Maildrops, _loggers);
}
