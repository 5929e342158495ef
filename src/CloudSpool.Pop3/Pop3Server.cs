using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using CloudSpool.Pop3.Engine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.Pop3;

/// <summary>
/// A POP3 server (RFC 1939 with RFC 2449 CAPA and pipelining, RFC 3206 response codes, RFC 5034 AUTH PLAIN,
/// RFC 2595 STLS, RFC 8314 implicit TLS) over the ports <see cref="IPop3Authenticator"/> and
/// <see cref="IMaildropProvider"/>: it listens, runs one asynchronous session per connection, and keeps serving
/// whatever a client sends.
/// </summary>
/// <example>
/// <code>
/// await using var server = new Pop3Server(new Pop3ServerOptions(), authenticator, maildrops, loggerFactory);
/// await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), cancellationToken);
/// var port = server.LocalEndPoints[0].Port;
/// // ...
/// await server.StopAsync(cancellationToken);
/// </code>
/// </example>
public sealed class Pop3Server : IAsyncDisposable
{
    private static readonly byte[] TooManySessions = Encoding.ASCII.GetBytes("-ERR [SYS/TEMP] too many sessions at once; try again later\r\n");
    private static readonly byte[] TooManyFromAddress = Encoding.ASCII.GetBytes("-ERR [SYS/TEMP] too many sessions from your address at once; try again later\r\n");

    private readonly Pop3ServerContext _context;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<long, Task> _connections = new();
    private readonly List<(Socket Socket, Pop3Endpoint Endpoint, Task Loop)> _listeners = [];
    private readonly List<IPEndPoint> _localEndPoints = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private long _nextConnectionId;
    private int _activeSessions;
    private long _sessionsServed;
    private int _started;

    /// <summary>Creates a server; nothing listens until <see cref="StartAsync(IEnumerable{Pop3Endpoint}, CancellationToken)"/>.</summary>
    /// <param name="options">Settings; validated here, and not to be changed afterwards.</param>
    /// <param name="authenticator">Checks credentials.</param>
    /// <param name="maildrops">Opens the maildrop of a logged-in identity.</param>
    /// <param name="loggerFactory">Where the server logs; passwords are never logged.</param>
    /// <exception cref="ArgumentException">An option is out of range; the message names each one and its value.</exception>
    public Pop3Server(
        Pop3ServerOptions options, IPop3Authenticator authenticator, IMaildropProvider maildrops, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(authenticator);
        ArgumentNullException.ThrowIfNull(maildrops);
        options.Validate();
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<Pop3Server>();
        _context = new Pop3ServerContext(options, authenticator, maildrops, _logger);
    }

    /// <summary>The addresses actually bound, in the order given to StartAsync (port 0 resolved to the real port).</summary>
    public IReadOnlyList<IPEndPoint> LocalEndPoints => _localEndPoints;

    /// <summary>Sessions running now.</summary>
    public int ActiveSessions => Volatile.Read(ref _activeSessions);

    /// <summary>Sessions served since the server started (connections refused for too many sessions not counted).</summary>
    public long SessionsServed => Interlocked.Read(ref _sessionsServed);

    /// <summary>Listens on one plain endpoint (STLS available when a certificate is configured).</summary>
    public Task StartAsync(IPEndPoint endPoint, CancellationToken cancellationToken = default) =>
        StartAsync([new Pop3Endpoint(endPoint)], cancellationToken);

    /// <summary>Binds every endpoint and starts accepting connections. Either all are bound or none stays bound.</summary>
    /// <exception cref="InvalidOperationException">Already started, or an implicit-TLS endpoint without a certificate.</exception>
    /// <exception cref="SocketException">An endpoint could not be bound.</exception>
    public Task StartAsync(IEnumerable<Pop3Endpoint> endpoints, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        cancellationToken.ThrowIfCancellationRequested();
        var list = endpoints.ToList();
        if (list.Count == 0)
            throw new ArgumentException("at least one endpoint is needed", nameof(endpoints));
        if (list.Any(e => e.ImplicitTls) && _context.TlsOptions is null)
            throw new InvalidOperationException("an implicit-TLS endpoint needs Pop3ServerOptions.Certificate");
        if (Interlocked.Exchange(ref _started, 1) != 0)
            throw new InvalidOperationException("the server was already started");

        var bound = new List<(Socket, Pop3Endpoint)>();
        try
        {
            foreach (var endpoint in list)
            {
                var socket = new Socket(endpoint.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                bound.Add((socket, endpoint));
                socket.Bind(endpoint.EndPoint);
                socket.Listen(512);
            }
        }
        catch
        {
            foreach (var (socket, _) in bound)
                socket.Dispose();
            Volatile.Write(ref _started, 0);
            throw;
        }

        foreach (var (socket, endpoint) in bound)
        {
            var local = (IPEndPoint)socket.LocalEndPoint!;
            _localEndPoints.Add(local);
            Pop3Log.Listening(_logger, local, endpoint.ImplicitTls);
            _listeners.Add((socket, endpoint, AcceptLoopAsync(socket, endpoint, local, _stopping.Token)));
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// Stops listening and ends every session (sessions cut this way commit nothing, as after a dropped connection),
    /// then waits for them to finish or for <paramref name="cancellationToken"/>.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (!_stopping.IsCancellationRequested)
            await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var (socket, _, _) in _listeners)
            socket.Dispose();
        await Task.WhenAll(_listeners.Select(l => l.Loop).Concat(_connections.Values)).WaitAsync(cancellationToken)
            .ConfigureAwait(false);
    }

    /// <summary>Stops the server.</summary>
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>
    /// Runs one session over an already connected stream (an in-memory pipe in tests, or a transport the host
    /// accepted itself). Never throws; returns when the session ends. Not counted against <see cref="Pop3ServerOptions.MaxSessions"/>.
    /// </summary>
    internal async Task RunSessionAsync(Stream transport, IPEndPoint? remote, bool isSecure, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextConnectionId).ToString(CultureInfo.InvariantCulture);
        var session = new Pop3Session(_context, transport, isSecure, remote, id);
        await using (session.ConfigureAwait(false))
            await session.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task AcceptLoopAsync(Socket listener, Pop3Endpoint endpoint, IPEndPoint local, CancellationToken cancellationToken)
    {
        // Leave the caller's context at once: StartAsync returns while this loop runs.
        await Task.Yield();
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            catch (ObjectDisposedException)
            {
                break;
            }
            catch (Exception ex)
            {
                // For example out of file descriptors: keep the listener, wait a little.
                Pop3Log.AcceptFailed(_logger, ex, local);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                continue;
            }
            Track(HandleConnectionAsync(client, endpoint, cancellationToken));
        }
        Pop3Log.ListenerStopped(_logger, local);
    }

    private void Track(Task connection)
    {
        var id = Interlocked.Increment(ref _nextConnectionId);
        _connections[id] = connection;
        // Registered after the add, so the removal can never run first.
        connection.ContinueWith(
            _ => _connections.TryRemove(id, out var _),
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task HandleConnectionAsync(Socket client, Pop3Endpoint endpoint, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var remote = client.RemoteEndPoint as IPEndPoint;
        var address = remote is null ? null : LoginThrottle.KeyOf(remote.Address);
        var active = Interlocked.Increment(ref _activeSessions);
        var fromAddress = Enter(address);
        try
        {
            client.NoDelay = true;
            if (fromAddress > _context.Options.MaxSessionsPerAddress)
            {
                Pop3Log.TooManySessionsFromAddress(_logger, remote, fromAddress - 1, _context.Options.MaxSessionsPerAddress);
                await RefuseAsync(client, endpoint, TooManyFromAddress).ConfigureAwait(false);
                return;
            }
            if (active > _context.Options.MaxSessions)
            {
                Pop3Log.TooManySessions(_logger, remote, active - 1, _context.Options.MaxSessions);
                await RefuseAsync(client, endpoint, TooManySessions).ConfigureAwait(false);
                return;
            }
            Interlocked.Increment(ref _sessionsServed);
            Stream transport = new NetworkStream(client, ownsSocket: true);
            if (endpoint.ImplicitTls)
            {
                var tls = new SslStream(transport, leaveInnerStreamOpen: false);
                transport = tls;
                if (!await HandshakeAsync(tls, remote, cancellationToken).ConfigureAwait(false))
                {
                    await tls.DisposeAsync().ConfigureAwait(false);
                    return;
                }
            }
            await RunSessionAsync(transport, remote, endpoint.ImplicitTls, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Pop3Log.SessionFailed(_logger, ex, "accept");
        }
        finally
        {
            client.Dispose();
            Leave(address);
            Interlocked.Decrement(ref _activeSessions);
        }
    }

    /// <summary>Counts a connection from <paramref name="address"/> (refused ones too, while they are answered); returns its count.</summary>
    private int Enter(IPAddress? address)
    {
        if (address is null)
            return 1;
        lock (_perAddress)
        {
            var count = _perAddress.GetValueOrDefault(address) + 1;
            _perAddress[address] = count;
            return count;
        }
    }

    private void Leave(IPAddress? address)
    {
        if (address is null)
            return;
        lock (_perAddress)
        {
            var count = _perAddress[address] - 1;
            if (count == 0)
                _perAddress.Remove(address);
            else
                _perAddress[address] = count;
        }
    }

    private async Task<bool> HandshakeAsync(SslStream tls, IPEndPoint? remote, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_context.Options.IdleTimeoutBeforeLogin);
        try
        {
            await tls.AuthenticateAsServerAsync(_context.TlsOptions!, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
            Pop3Log.HandshakeFailed(_logger, ex, remote);
            return false;
        }
    }

    private async Task RefuseAsync(Socket client, Pop3Endpoint endpoint, byte[] reply)
    {
        // On an implicit-TLS port a plaintext reply would be noise, and a handshake is the cost the cap avoids:
        // close without a word there.
        if (endpoint.ImplicitTls)
            return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await client.SendAsync(reply, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            Pop3Log.FarewellFailed(_logger, ex, "refused");
        }
    }
}
