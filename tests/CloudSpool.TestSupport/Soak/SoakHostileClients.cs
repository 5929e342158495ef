using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CloudSpool.TestSupport.Soak;

/// <summary>
/// Clients that attack the edge while the soak's mail clients use it: binary garbage, a pipelined flood of bad
/// commands, a line of a megabyte, a slowloris trickling a byte a second, and a burst of idle connections. None of
/// them sends a password (failed logins are penalised per address, and the soak's clients share 127.0.0.1).
/// Counts how many the edge cut off (closed the connection while the attacker was still at it).
/// </summary>
public sealed class SoakHostileClients(Func<int> port, int seed)
{
    private readonly Random _random = new(seed);
    private int _attacks;
    private int _cutOff;

    public int Attacks => _attacks;
    public int CutOff => _cutOff;

    /// <summary>Attacks one after another until cancelled.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var kind = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var cut = (kind++ % 5) switch
                {
                    0 => await GarbageAsync(cancellationToken).ConfigureAwait(false),
                    1 => await FloodAsync(cancellationToken).ConfigureAwait(false),
                    2 => await LongLineAsync(cancellationToken).ConfigureAwait(false),
                    3 => await SlowlorisAsync(cancellationToken).ConfigureAwait(false),
                    _ => await IdleBurstAsync(cancellationToken).ConfigureAwait(false),
                };
                Interlocked.Increment(ref _attacks);
                if (cut)
                    Interlocked.Increment(ref _cutOff);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                Interlocked.Increment(ref _attacks);
                Interlocked.Increment(ref _cutOff);
            }
        }
    }

    private async Task<TcpClient> ConnectAsync(CancellationToken ct)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port(), ct).ConfigureAwait(false);
        return client;
    }

    /// <summary>Writes chunks until the edge closes (true) or the chunks run out (false).</summary>
    private static async Task<bool> WriteUntilClosedAsync(TcpClient client, IEnumerable<byte[]> chunks, TimeSpan pause, CancellationToken ct)
    {
        var stream = client.GetStream();
        var drain = DrainAsync(stream, ct);
        foreach (var chunk in chunks)
        {
            if (drain.IsCompleted)
                return true;
            try
            {
                await stream.WriteAsync(chunk, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or SocketException)
            {
                return true;
            }
            if (pause > TimeSpan.Zero)
                await Task.Delay(pause, ct).ConfigureAwait(false);
        }
        // Give the edge a moment to act on what it got.
        return await Task.WhenAny(drain, Task.Delay(TimeSpan.FromSeconds(5), ct)).ConfigureAwait(false) == drain;
    }

    /// <summary>Reads (and discards) until the peer closes; completes then.</summary>
    private static async Task DrainAsync(NetworkStream stream, CancellationToken ct)
    {
        var buffer = new byte[4096];
        try
        {
            while (await stream.ReadAsync(buffer, ct).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // closed
        }
    }

    private async Task<bool> GarbageAsync(CancellationToken ct)
    {
        using var client = await ConnectAsync(ct).ConfigureAwait(false);
        var chunks = Enumerable.Range(0, 64).Select(_ =>
        {
            var bytes = new byte[512];
            _random.NextBytes(bytes);
            return bytes;
        }).ToList();
        return await WriteUntilClosedAsync(client, chunks, TimeSpan.FromMilliseconds(20), ct).ConfigureAwait(false);
    }

    private async Task<bool> FloodAsync(CancellationToken ct)
    {
        using var client = await ConnectAsync(ct).ConfigureAwait(false);
        var flood = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("XYZZY plugh\r\nRETR 1\r\nSTAT\r\n", 200)));
        return await WriteUntilClosedAsync(client, [flood], TimeSpan.Zero, ct).ConfigureAwait(false);
    }

    private async Task<bool> LongLineAsync(CancellationToken ct)
    {
        using var client = await ConnectAsync(ct).ConfigureAwait(false);
        var chunk = Encoding.ASCII.GetBytes(new string('A', 64 * 1024));
        var chunks = Enumerable.Repeat(chunk, 16).Append("\r\n"u8.ToArray()).Concat(Enumerable.Repeat("NOOP\r\n"u8.ToArray(), 20));
        return await WriteUntilClosedAsync(client, chunks, TimeSpan.Zero, ct).ConfigureAwait(false);
    }

    private async Task<bool> SlowlorisAsync(CancellationToken ct)
    {
        using var client = await ConnectAsync(ct).ConfigureAwait(false);
        var chunks = "USER slowloris-never-finishes".Select(c => new[] { (byte)c });
        return await WriteUntilClosedAsync(client, chunks, TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
    }

    private async Task<bool> IdleBurstAsync(CancellationToken ct)
    {
        var clients = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 20; i++)
                clients.Add(await ConnectAsync(ct).ConfigureAwait(false));
            await Task.Delay(TimeSpan.FromSeconds(3), ct).ConfigureAwait(false);
            return false;
        }
        finally
        {
            foreach (var c in clients)
                c.Dispose();
        }
    }
}
