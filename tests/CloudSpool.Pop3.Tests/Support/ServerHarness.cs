using System.Net;

namespace CloudSpool.Pop3.Tests.Support;

/// <summary>
/// A real <see cref="Pop3Server"/> on 127.0.0.1 with two listeners on free ports: plain (STLS offered) and implicit
/// TLS. The user "alice" (password "secret") has the whole corpus unless told otherwise.
/// </summary>
public sealed class ServerHarness : IAsyncDisposable
{
    private ServerHarness(Pop3Server server, FakeAuthenticator authenticator, FakeMaildropProvider maildrops,
        CapturingLoggerFactory logs, List<FakeMessage> mail)
    {
        Server = server;
        Authenticator = authenticator;
        Maildrops = maildrops;
        Logs = logs;
        Mail = mail;
    }

    public Pop3Server Server { get; }
    public FakeAuthenticator Authenticator { get; }
    public FakeMaildropProvider Maildrops { get; }
    public CapturingLoggerFactory Logs { get; }

    /// <summary>alice's messages as they were when the server started.</summary>
    public List<FakeMessage> Mail { get; }

    public int PlainPort => Server.LocalEndPoints[0].Port;
    public int TlsPort => Server.LocalEndPoints[1].Port;

    public static async Task<ServerHarness> StartAsync(
        Action<Pop3ServerOptions>? configure = null, IEnumerable<FakeMessage>? mail = null, FakeAuthenticator? authenticator = null)
    {
        var options = SessionHarness.TestOptions();
        options.Certificate = TestCertificates.Localhost;
        configure?.Invoke(options);
        var messages = (mail ?? TestCorpus.AsMessages()).ToList();
        authenticator ??= new FakeAuthenticator((SessionHarness.User, SessionHarness.Password));
        var maildrops = new FakeMaildropProvider().Add(SessionHarness.User, messages);
        var logs = new CapturingLoggerFactory();
        var server = new Pop3Server(options, authenticator, maildrops, logs);
        await server.StartAsync(
        [
            new Pop3Endpoint(new IPEndPoint(IPAddress.Loopback, 0)),
            new Pop3Endpoint(new IPEndPoint(IPAddress.Loopback, 0), ImplicitTls: true),
        ]);
        return new ServerHarness(server, authenticator, maildrops, logs, messages);
    }

    /// <summary>Waits until every session has ended (clients disconnect before the server notices).</summary>
    public async Task WaitForIdleAsync()
    {
        var deadline = DateTime.UtcNow + WireClient.Patience;
        while (Server.ActiveSessions > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "sessions still active: " + Server.ActiveSessions);
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(WireClient.Patience);
        await Server.StopAsync(timeout.Token);
        await Server.DisposeAsync();
    }
}
