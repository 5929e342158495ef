using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>Raw POP3 exchanges over a socket, for answers a client library would hide (response codes).</summary>
public static class Pop3Raw
{
    /// <summary>A raw USER/PASS exchange on 127.0.0.1:<paramref name="port"/>; returns the connection and the answer to PASS.</summary>
    public static async Task<(TcpClient Client, string Answer)> LoginAsync(int port, string login, string password)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        var stream = tcp.GetStream();
        var reader = new StreamReader(stream, Encoding.ASCII, leaveOpen: true);
        Xunit.Assert.StartsWith("+OK", await reader.ReadLineAsync(timeout.Token));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"USER {login}\r\n"), timeout.Token);
        Xunit.Assert.StartsWith("+OK", await reader.ReadLineAsync(timeout.Token));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"PASS {password}\r\n"), timeout.Token);
        return (tcp, (await reader.ReadLineAsync(timeout.Token))!);
    }
}
