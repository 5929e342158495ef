using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// A minimal POP3 client over a plain socket that undoes nothing: multi-line payloads are returned exactly as they
/// came over the wire (byte-stuffing and the terminating ".\r\n" included), so two servers can be compared byte for
/// byte. Every read is bounded in time.
/// </summary>
public sealed class RawPop3Client : IAsyncDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _pos;
    private int _end;

    private RawPop3Client(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/> and reads the greeting.</summary>
    public static async Task<RawPop3Client> ConnectAsync(int port)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port).WaitAsync(Patience);
        var client = new RawPop3Client(tcp);
        Assert.StartsWith("+OK", await client.ReadLineAsync());
        return client;
    }

    /// <summary>Connects and logs in with USER/PASS.</summary>
    public static async Task<RawPop3Client> LogInAsync(int port, string user, string password)
    {
        var client = await ConnectAsync(port);
        Assert.StartsWith("+OK", await client.CommandAsync("USER " + user));
        var answer = await client.CommandAsync("PASS " + password);
        Assert.True(answer.StartsWith("+OK", StringComparison.Ordinal), $"login of {user}: {answer}");
        return client;
    }

    /// <summary>Sends one command line and returns the status line of the answer (without CRLF).</summary>
    public async Task<string> CommandAsync(string command)
    {
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(command + "\r\n")).AsTask().WaitAsync(Patience);
        return await ReadLineAsync();
    }

    /// <summary>Sends <paramref name="text"/> as it is, in one write: several commands at once for a pipelining test.</summary>
    public async Task SendAsync(string text) =>
        await _stream.WriteAsync(Encoding.ASCII.GetBytes(text)).AsTask().WaitAsync(Patience);

    /// <summary>The next line the server sends (without CRLF): the status line of an answer to a command sent before.</summary>
    public Task<string> ReadStatusAsync() => ReadLineAsync();

    /// <summary>A command with a multi-line answer: the bytes after the +OK line up to and including ".\r\n".</summary>
    public async Task<byte[]> MultiLineAsync(string command)
    {
        var status = await CommandAsync(command);
        Assert.True(status.StartsWith("+OK", StringComparison.Ordinal), $"{command}: {status}");
        return await ReadMultiLineAsync();
    }

    /// <summary>The rest of a multi-line answer whose +OK line was read: up to and including ".\r\n".</summary>
    public async Task<byte[]> ReadMultiLineAsync()
    {
        var data = new MemoryStream();
        var atLineStart = true;
        var matched = 0; // how much of ".\r\n" at a line start has been seen
        while (true)
        {
            var b = await ReadByteAsync();
            data.WriteByte(b);
            if (matched > 0 || (atLineStart && b == '.'))
            {
                var expected = ".\r\n"[matched];
                matched = b == expected ? matched + 1 : 0;
                if (matched == 3)
                    return data.ToArray();
            }
            atLineStart = b == '\n';
        }
    }

    /// <summary>LIST: message number → size.</summary>
    public async Task<Dictionary<int, long>> ListAsync()
    {
        var text = Encoding.ASCII.GetString(await MultiLineAsync("LIST"));
        return text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Where(l => l != ".")
            .Select(l => l.Split(' '))
            .ToDictionary(p => int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p => long.Parse(p[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>UIDL: message number → unique id.</summary>
    public async Task<Dictionary<int, string>> UidlAsync()
    {
        var text = Encoding.ASCII.GetString(await MultiLineAsync("UIDL"));
        return text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Where(l => l != ".")
            .Select(l => l.Split(' '))
            .ToDictionary(p => int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p => p[1]);
    }

    /// <summary>Everything the server sends until it closes the connection.</summary>
    public async Task<string> ReadToEndAsync()
    {
        var text = new StringBuilder();
        try
        {
            while (true)
                text.Append((char)await ReadByteAsync());
        }
        catch (IOException)
        {
            return text.ToString();
        }
    }

    private async Task<string> ReadLineAsync()
    {
        var line = new StringBuilder();
        while (true)
        {
            var b = await ReadByteAsync();
            if (b == '\n')
                return line.ToString().TrimEnd('\r');
            line.Append((char)b);
        }
    }

    private async Task<byte> ReadByteAsync()
    {
        if (_pos == _end)
        {
            _end = await _stream.ReadAsync(_buffer).AsTask().WaitAsync(Patience);
            _pos = 0;
            if (_end == 0)
                throw new IOException("the server closed the connection");
        }
        return _buffer[_pos++];
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _stream.WriteAsync("QUIT\r\n"u8.ToArray()).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is IOException or SocketException or TimeoutException or ObjectDisposedException)
        {
            // Already closed: nothing to sign off.
        }
        _tcp.Dispose();
    }
}
