using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;
using CloudSpool.Pop3;
using CloudSpool.TestSupport.Fixtures;
using MailKit.Net.Pop3;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// Hostile clients against the real edge on Azurite over real sockets (over-long lines, binary garbage, floods,
/// slowloris, too many connections, a client that stops reading mid-RETR) while a normal MailKit client keeps
/// logging in, STATing and RETRing successfully.
/// </summary>
public sealed class EdgeHostileTests : IAsyncLifetime
{
    private const int MaxSessions = 8;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan IdleBeforeLogin = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan IdleAfterLogin = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan LoginTimeout = TimeSpan.FromSeconds(10);
    private PullHarness _spool = null!;
    private SpoolEdge _edge = null!;
    private Pop3Server _server = null!;
    private byte[] _first = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        _spool = await PullHarness.StartAsync();
        _edge = _spool.Runtime.CreateEdge();
        _server = _edge.CreateServer(new Pop3ServerOptions
        {
            FailedLoginDelay = TimeSpan.FromMilliseconds(50),
            MaxSessions = MaxSessions,
            IdleTimeoutBeforeLogin = IdleBeforeLogin,
            IdleTimeoutAfterLogin = IdleAfterLogin,
            LoginTimeout = LoginTimeout,
        });
        await _server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        _port = _server.LocalEndPoints[0].Port;
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("secret")), CancellationToken.None));
        _first = TestMail.Create("normal", bodyBytes: 20_000);
        await _spool.PutAsync("alice", _first);
        await _spool.PutAsync("alice", TestMail.Create("second"));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _edge.DisposeAsync();
        await _spool.DisposeAsync();
    }

    // ---- the normal client -------------------------------------------------------------------------------

    private int _round;

    /// <summary>One normal MailKit session under its own client identity: login, STAT, RETR 1, QUIT.</summary>
    private async Task NormalRoundAsync()
    {
        using var timeout = new CancellationTokenSource(Bound);
        using var client = new Pop3Client { Timeout = (int)Bound.TotalMilliseconds };
        await client.ConnectAsync("127.0.0.1", _port, MailKit.Security.SecureSocketOptions.None, timeout.Token);
        await client.AuthenticateAsync($"alice+normal{Interlocked.Increment(ref _round)}", "secret", timeout.Token);
        Assert.Equal(2, client.Count);
        await using (var stream = await client.GetStreamAsync(0, cancellationToken: timeout.Token))
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy, timeout.Token);
            Assert.Equal(_first, copy.ToArray());
        }
        await client.DisconnectAsync(quit: true, timeout.Token);
    }

    /// <summary>
    /// Runs <paramref name="attack"/> while normal rounds run back to back beside it; every round must succeed, and
    /// at least one must complete while the attack is under way.
    /// </summary>
    private async Task WhileNormalClientIsServedAsync(Func<Task> attack)
    {
        using var stop = new CancellationTokenSource();
        var rounds = 0;
        var normal = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await NormalRoundAsync();
                rounds++;
                await Task.Delay(50);
            }
        });
        var attacking = Task.Run(attack);
        await Task.WhenAny(attacking, normal);
        if (normal.IsCompleted)
            await normal; // a failed normal round fails the test with its own exception
        await attacking.WaitAsync(TimeSpan.FromMinutes(3));
        // The attack is over; make sure a round also finished while it ran (slow machine: wait for one more).
        var deadline = DateTime.UtcNow + Bound;
        while (rounds == 0 && DateTime.UtcNow < deadline && !normal.IsCompleted)
            await Task.Delay(50);
        await stop.CancelAsync();
        await normal.WaitAsync(Bound);
        Assert.True(rounds > 0, "the normal client was not served during the attack");
    }

    // ---- raw sockets -------------------------------------------------------------------------------------

    private async Task<Socket> ConnectRawAsync(int? port = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, port ?? _port).WaitAsync(Bound);
        return socket;
    }

    /// <summary>Everything the server sends until it closes the connection.</summary>
    private static async Task<string> ReadToCloseAsync(Socket socket)
    {
        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        using var timeout = new CancellationTokenSource(Bound);
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            }
            catch (SocketException)
            {
                break; // reset: closed as well
            }
            if (n == 0)
                break;
            received.Write(buffer, 0, n);
        }
        return Encoding.Latin1.GetString(received.ToArray());
    }

    private static async Task SendAsync(Socket socket, string text) =>
        await socket.SendAsync(Encoding.Latin1.GetBytes(text), SocketFlags.None).WaitAsync(Bound);

    private async Task WaitForIdleServerAsync()
    {
        var deadline = DateTime.UtcNow + Bound;
        while (_server.ActiveSessions > 0 || _edge.Maildrops.OpenSessions > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"sessions did not end ({_server.ActiveSessions} active)");
            await Task.Delay(50);
        }
    }

    private static long LiveHeap() => GC.GetTotalMemory(forceFullCollection: true);

    // ---- the attacks -------------------------------------------------------------------------------------

    [Fact]
    public async Task A_256_MiB_line_is_discarded_as_it_arrives_and_the_session_goes_on()
    {
        // A line must be complete within the idle timeout: this server gives the 256 MiB a minute, even on a loaded
        // machine (the normal client keeps using the test's main server beside it).
        await using var patient = _edge.CreateServer(new Pop3ServerOptions
        {
            IdleTimeoutBeforeLogin = TimeSpan.FromSeconds(60),
            LoginTimeout = TimeSpan.FromSeconds(120),
        });
        await patient.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        await WhileNormalClientIsServedAsync(async () =>
        {
            using var socket = await ConnectRawAsync(patient.LocalEndPoints[0].Port);
            var before = LiveHeap();
            var chunk = Encoding.ASCII.GetBytes(new string('A', 1024 * 1024));
            for (var i = 0; i < 256; i++)
                await socket.SendAsync(chunk, SocketFlags.None).WaitAsync(Bound);
            // Still no line end: a server that buffered the line would hold 256 MiB now.
            var growth = LiveHeap() - before;
            Assert.True(growth < 64L * 1024 * 1024, $"live heap grew by {growth / (1024 * 1024)} MiB while receiving one 256 MiB line");
            await SendAsync(socket, "\r\nCAPA\r\nQUIT\r\n");
            var answer = await ReadToCloseAsync(socket);
            Assert.StartsWith("+OK CloudSpool POP3 server ready", answer, StringComparison.Ordinal);
            Assert.Contains("\r\n-ERR line too long (RFC 2449: 255 octets at most)\r\n+OK capability list follows\r\n", answer, StringComparison.Ordinal);
            Assert.EndsWith("+OK CloudSpool signing off\r\n", answer, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Binary_garbage_with_nul_bytes_gets_errors_and_the_session_is_ended_after_too_many()
    {
        await WhileNormalClientIsServedAsync(async () =>
        {
            var random = new Random(1939);
            for (var attempt = 0; attempt < 5; attempt++)
            {
                using var socket = await ConnectRawAsync();
                var garbage = new byte[256 * 1024];
                random.NextBytes(garbage);
                for (var i = 0; i < garbage.Length; i += random.Next(1, 300))
                    garbage[i] = (byte)(i % 3 == 0 ? '\n' : 0);
                // The server may close while garbage is still being sent: that is the expected end.
                var send = socket.SendAsync(garbage, SocketFlags.None);
                var answer = await ReadToCloseAsync(socket);
                try
                {
                    await send;
                }
                catch (SocketException)
                {
                    // reset by the server after it ended the session
                }
                var lines = answer.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
                Assert.StartsWith("+OK CloudSpool POP3 server ready", lines[0], StringComparison.Ordinal);
                Assert.All(lines.Skip(1), l => Assert.StartsWith("-ERR ", l, StringComparison.Ordinal));
                Assert.Equal("-ERR too many bad commands; closing the connection", lines[^1]);
                // Replies carry only the server's own text: nothing of the garbage is echoed.
                Assert.DoesNotContain('\0', answer);
            }
        });
    }

    [Fact]
    public async Task A_pipelined_flood_of_bad_commands_is_cut_off_and_a_flood_of_noops_after_login_is_all_answered()
    {
        await WhileNormalClientIsServedAsync(async () =>
        {
            using (var bad = await ConnectRawAsync())
            {
                var flood = new StringBuilder();
                for (var i = 0; i < 5000; i++)
                    flood.Append(i % 2 == 0 ? "NOOP\r\n" : "XYZZY\r\n");
                var send = SendAsync(bad, flood.ToString());
                var answer = await ReadToCloseAsync(bad);
                await send.ContinueWith(_ => { }, TaskScheduler.Default); // may be reset once the server closes
                var lines = answer.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(1 + 10, lines.Length); // the greeting, then MaxBadCommands answers
                Assert.Equal("-ERR NOOP is valid only after login", lines[1]);
                Assert.Equal("-ERR unknown command", lines[2]);
                Assert.Equal("-ERR too many bad commands; closing the connection", lines[^1]);
            }

            using var good = await ConnectRawAsync();
            var noops = new StringBuilder("USER alice+flood\r\nPASS secret\r\n");
            for (var i = 0; i < 5000; i++)
                noops.Append("NOOP\r\n");
            noops.Append("QUIT\r\n");
            await SendAsync(good, noops.ToString());
            var replies = (await ReadToCloseAsync(good)).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(5000, replies.Count(l => l == "+OK"));
            Assert.StartsWith("+OK CloudSpool signing off", replies[^1], StringComparison.Ordinal);
        });
    }

    /// <summary>
    /// Sends <paramref name="pieces"/> one every <paramref name="interval"/> until they run out or the server closes
    /// the connection; returns what the server sent, how many pieces went out and how long it took.
    /// </summary>
    private async Task<(string Answer, int Sent, TimeSpan Elapsed)> DripUntilClosedAsync(IEnumerable<string> pieces, TimeSpan interval)
    {
        using var socket = await ConnectRawAsync();
        var clock = Stopwatch.StartNew();
        var closed = ReadToCloseAsync(socket);
        var sent = 0;
        foreach (var piece in pieces)
        {
            if (closed.IsCompleted || clock.Elapsed > Bound)
                break;
            try
            {
                await SendAsync(socket, piece);
            }
            catch (SocketException)
            {
                break;
            }
            sent++;
            await Task.WhenAny(closed, Task.Delay(interval));
        }
        return (await closed, sent, clock.Elapsed);
    }

    [Fact]
    public async Task A_slowloris_sending_one_byte_a_second_is_disconnected_at_the_idle_timeout()
    {
        await WhileNormalClientIsServedAsync(async () =>
        {
            const string line = "USER alice";
            var (answer, sent, elapsed) = await DripUntilClosedAsync(line.Select(c => c.ToString()), TimeSpan.FromSeconds(1));
            // Only the greeting: the command never completed, and the idle timeout ends the session without a reply.
            Assert.Equal("+OK CloudSpool POP3 server ready\r\n", answer);
            Assert.True(elapsed >= IdleBeforeLogin - TimeSpan.FromMilliseconds(500), "closed after " + elapsed);
            Assert.True(sent < line.Length, $"the slow client sent all of its {sent} bytes in {elapsed}");
        });
    }

    [Fact]
    public async Task A_client_busy_with_capa_that_never_logs_in_is_ended_at_the_login_timeout()
    {
        await WhileNormalClientIsServedAsync(async () =>
        {
            var (answer, _, elapsed) = await DripUntilClosedAsync(Enumerable.Repeat("CAPA\r\n", 1000), TimeSpan.FromMilliseconds(500));
            Assert.True(elapsed >= LoginTimeout - TimeSpan.FromMilliseconds(500), "closed after " + elapsed);
            Assert.True(elapsed < Bound, "a CAPA-only client kept its session for " + elapsed);
            Assert.Contains("+OK capability list follows", answer, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task Connections_beyond_max_sessions_get_sys_temp_and_the_next_client_is_served_once_one_leaves()
    {
        var hogs = new List<Socket>();
        try
        {
            for (var i = 0; i < MaxSessions; i++)
            {
                var hog = await ConnectRawAsync();
                hogs.Add(hog);
                var greeting = new byte[64];
                var n = await hog.ReceiveAsync(greeting, SocketFlags.None).WaitAsync(Bound);
                Assert.StartsWith("+OK", Encoding.ASCII.GetString(greeting, 0, n), StringComparison.Ordinal);
            }
            Assert.Equal(MaxSessions, _server.ActiveSessions);

            using (var refused = await ConnectRawAsync())
                Assert.Equal("-ERR [SYS/TEMP] too many sessions at once; try again later\r\n", await ReadToCloseAsync(refused));
            await Assert.ThrowsAnyAsync<Exception>(NormalRoundAsync);

            hogs[0].Dispose();
            hogs.RemoveAt(0);
            var deadline = DateTime.UtcNow + Bound;
            while (_server.ActiveSessions >= MaxSessions)
            {
                Assert.True(DateTime.UtcNow < deadline, "the closed session was not released");
                await Task.Delay(50);
            }
            await NormalRoundAsync();
        }
        finally
        {
            foreach (var hog in hogs)
                hog.Dispose();
        }
    }

    [Fact]
    public async Task A_client_that_stops_reading_during_a_big_retr_is_cut_off_and_its_maildrop_released()
    {
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("bulk", "bulk", Pop3Passwords.Hash("secret")), CancellationToken.None));
        await _spool.PutAsync("bulk", TestMail.Create("big", bodyBytes: 64 * 1024 * 1024));

        await WhileNormalClientIsServedAsync(async () =>
        {
            using var socket = await ConnectRawAsync();
            socket.ReceiveBufferSize = 64 * 1024;
            var before = LiveHeap();
            await SendAsync(socket, "USER bulk\r\nPASS secret\r\nRETR 1\r\n");
            // Read nothing. The server fills the socket buffers, then its write waits on this client.
            await Task.Delay(IdleAfterLogin / 2);
            var growth = LiveHeap() - before;
            Assert.True(growth < 32L * 1024 * 1024, $"live heap grew by {growth / (1024 * 1024)} MiB while a 64 MiB message waited on a stalled client");
            // A new login of the identity takes the stalled session over at once (its blocked write is cancelled).
            await using var client = await RawPop3Client.ConnectAsync(_port);
            Assert.StartsWith("+OK", await client.CommandAsync("USER bulk"));
            Assert.StartsWith("+OK", await client.CommandAsync("PASS secret"));
        });
        await WaitForIdleServerAsync();
    }
}
