using System.Net;

namespace CloudSpool.Pop3.Tests.Support;

/// <summary>
/// One POP3 session over an in-memory duplex stream, driven byte by byte by a <see cref="WireClient"/>, with fake
/// ports. The user "alice" (password "secret") has <see cref="Mail"/>.
/// </summary>
public sealed class SessionHarness : IAsyncDisposable
{
    public const string User = "alice";
    public const string Password = "secret";

    // Sizes by hand (RFC 1939: every line end counted as CRLF); a test checks them against IngestMeter.
    public static readonly FakeMessage One = new("uid-one", Wire.Bytes("Subject: one\r\n\r\nHello\r\n")); // 23
    public static readonly FakeMessage Two = new("uid-two", Wire.Bytes("Subject: two\n\n.dot line\nend")); // 30
    public static readonly FakeMessage Three = new("uid-three", Wire.Bytes("Subject: three\r\n\r\nbinary \0\xff\r\n")); // 29

    public static IReadOnlyList<FakeMessage> Mail => [One, Two, Three];

    public static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 40000);

    /// <summary>A documentation address (RFC 5737): not a network allowed to send plaintext passwords.</summary>
    public static readonly IPEndPoint Remote = new(IPAddress.Parse("192.0.2.10"), 40000);

    private readonly CancellationTokenSource _stop;
    private readonly List<Task> _others = [];

    private SessionHarness(WireClient client, Task session, Pop3Server server, FakeAuthenticator authenticator,
        FakeMaildropProvider maildrops, CapturingLoggerFactory logs, CancellationTokenSource stop)
    {
        _stop = stop;
        Client = client;
        Session = session;
        Server = server;
        Authenticator = authenticator;
        Maildrops = maildrops;
        Logs = logs;
    }

    public WireClient Client { get; }

    /// <summary>The server side of the session: completes when the session ends.</summary>
    public Task Session { get; }

    public Pop3Server Server { get; }
    public FakeAuthenticator Authenticator { get; }
    public FakeMaildropProvider Maildrops { get; }
    public CapturingLoggerFactory Logs { get; }

    /// <summary>The maildrop the session opened at login.</summary>
    public FakeMaildrop Maildrop => Assert.Single(Maildrops.Opened);

    /// <summary>Options as the transcript tests use them: no login delay, otherwise the defaults.</summary>
    public static Pop3ServerOptions TestOptions() => new() { FailedLoginDelay = TimeSpan.Zero, HostName = "pop.test" };

    public static async Task<SessionHarness> StartAsync(
        Action<Pop3ServerOptions>? configure = null,
        FakeAuthenticator? authenticator = null,
        FakeMaildropProvider? maildrops = null,
        IPEndPoint? remote = null,
        bool readGreeting = true,
        IPop3Authenticator? port = null)
    {
        var options = TestOptions();
        configure?.Invoke(options);
        authenticator ??= new FakeAuthenticator((User, Password));
        maildrops ??= new FakeMaildropProvider().Add(User, Mail);
        var logs = new CapturingLoggerFactory();
        var server = new Pop3Server(options, port ?? authenticator, maildrops, logs);
        var (serverSide, clientSide) = InMemoryDuplex.CreatePair();
        var stop = new CancellationTokenSource();
        var harness = new SessionHarness(
            new WireClient(clientSide), server.RunSessionAsync(serverSide, remote ?? Loopback, isSecure: false, stop.Token),
            server, authenticator, maildrops, logs, stop);
        if (readGreeting)
            Assert.StartsWith("+OK CloudSpool POP3 server ready", await harness.Client.ReadLineAsync());
        return harness;
    }

    /// <summary>
    /// Another session on the same server (sharing its per-address login penalties) from <paramref name="remote"/>,
    /// greeting read. Dispose the client to end it.
    /// </summary>
    public async Task<WireClient> ConnectAnotherAsync(IPEndPoint remote)
    {
        var (serverSide, clientSide) = InMemoryDuplex.CreatePair();
        var client = new WireClient(clientSide);
        _others.Add(Server.RunSessionAsync(serverSide, remote, isSecure: false, _stop.Token));
        Assert.StartsWith("+OK CloudSpool POP3 server ready", await client.ReadLineAsync());
        return client;
    }

    /// <summary>Sends one command and returns the first line of the reply.</summary>
    public async Task<string?> CommandAsync(string command)
    {
        await Client.SendAsync(command + "\r\n");
        return await Client.ReadLineAsync();
    }

    /// <summary>Sends one command and asserts the exact reply line.</summary>
    public async Task ExpectAsync(string command, string reply) => Assert.Equal(reply, await CommandAsync(command));

    /// <summary>USER/PASS as alice.</summary>
    public async Task LoginAsync()
    {
        await ExpectAsync("USER " + User, "+OK send PASS");
        await ExpectAsync("PASS " + Password, "+OK logged in; maildrop has 3 messages (82 octets)");
    }

    /// <summary>Waits for the server side of the session to end; it never throws.</summary>
    public async Task WaitForEndAsync() => await Session.WaitAsync(WireClient.Patience);

    /// <summary>Cuts the connection from the client side and waits for the session to end.</summary>
    public async Task DropAsync()
    {
        await Client.DisposeAsync();
        await WaitForEndAsync();
    }

    /// <summary>Stops the session as a server shutdown would.</summary>
    public Task StopAsync() => _stop.CancelAsync();

    public async ValueTask DisposeAsync()
    {
        await Client.DisposeAsync();
        await _stop.CancelAsync();
        await Session.WaitAsync(WireClient.Patience);
        await Task.WhenAll(_others).WaitAsync(WireClient.Patience);
        _stop.Dispose();
        await Server.DisposeAsync();
    }
}
