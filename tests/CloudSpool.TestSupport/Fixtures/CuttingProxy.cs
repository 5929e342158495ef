using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// A loopback TCP proxy in front of a server that can cut a connection after a given number of bytes
/// from the server (a connection that drops in the middle of a RETR), or rewrite the command lines sent to it
/// (a real server made to lack a command).
/// </summary>
public sealed class CuttingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public CuttingProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Cut each new connection after this many bytes from the server; null passes everything.</summary>
    public long? CutAfterBytes { get; set; }

    /// <summary>
    /// For each new connection: every command line from the client is sent as what this returns instead (e.g. UIDL as
    /// an unknown command, for a server without UIDL); null passes the bytes as they are.
    /// </summary>
    public Func<string, string>? RewriteCommand { get; set; }

    /// <summary>How many connections were cut.</summary>
    public int Cuts => _cuts;
    private int _cuts;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = RelayAsync(client, CutAfterBytes, RewriteCommand);
        }
    }

    private async Task RelayAsync(TcpClient client, long? cutAfter, Func<string, string>? rewrite)
    {
        using var _ = client;
        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            using var pair = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var up = rewrite is null
                ? client.GetStream().CopyToAsync(server.GetStream(), pair.Token)
                : CopyCommandsAsync(client.GetStream(), server.GetStream(), rewrite, pair.Token);
            var down = CopyDownAsync(server.GetStream(), client.GetStream(), cutAfter, pair.Token);
            await Task.WhenAny(up, down);
            await pair.CancelAsync();
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Either side went away: that is what this proxy is for.
        }
        client.Client.LingerState = new LingerOption(true, 0); // RST, like a dead network path
    }

    private static async Task CopyCommandsAsync(Stream from, Stream to, Func<string, string> rewrite, CancellationToken ct)
    {
        using var reader = new StreamReader(from, Encoding.Latin1, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        while (await reader.ReadLineAsync(ct) is { } line)
            await to.WriteAsync(Encoding.Latin1.GetBytes(rewrite(line) + "\r\n"), ct);
    }

    private async Task CopyDownAsync(Stream from, Stream to, long? cutAfter, CancellationToken ct)
    {
        var buffer = new byte[8192];
        long sent = 0;
        while (true)
        {
            var read = await from.ReadAsync(buffer, ct);
            if (read == 0)
                return;
            if (cutAfter is { } limit && sent + read >= limit)
            {
                await to.WriteAsync(buffer.AsMemory(0, (int)(limit - sent)), ct);
                Interlocked.Increment(ref _cuts);
                return;
            }
            await to.WriteAsync(buffer.AsMemory(0, read), ct);
            sent += read;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
