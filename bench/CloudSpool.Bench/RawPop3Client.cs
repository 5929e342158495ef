using System.Diagnostics;
using System.IO.Hashing;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace CloudSpool.Bench;

/// <summary>
/// The edge bench's POP3 client, the same code for both servers: a raw socket, one receive buffer scanned in place
/// (no per-line strings), commands pipelined when the server advertises PIPELINING (RFC 2449), RETR content
/// dot-unstuffed and hashed while it streams by.
/// </summary>
public sealed class RawPop3Client : IAsyncDisposable
{
    private const int Window = 32;
    private readonly Socket _socket;
    private byte[] _buffer = new byte[256 * 1024];
    private int _start;
    private int _end;

    private RawPop3Client(Socket socket) => _socket = socket;

    /// <summary>Bytes received on this connection (protocol included).</summary>
    public long Received { get; private set; }

    /// <summary>Connects and reads the greeting.</summary>
    public static async Task<RawPop3Client> ConnectAsync(string host, int port, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new RawPop3Client(socket);
        await client.ReadStatusAsync("greeting", ct).ConfigureAwait(false);
        return client;
    }

    /// <summary>Whether the server's CAPA lists PIPELINING.</summary>
    public async Task<bool> PipeliningAsync(CancellationToken ct)
    {
        await SendAsync("CAPA\r\n", ct).ConfigureAwait(false);
        await ReadStatusAsync("CAPA", ct).ConfigureAwait(false);
        var pipelining = false;
        while (true)
        {
            var line = await ReadLineAsync(ct).ConfigureAwait(false);
            if (line == ".")
            {
                return pipelining;
            }

            pipelining |= line.Equals("PIPELINING", StringComparison.OrdinalIgnoreCase);
        }
    }

    /// <summary>What one login+STAT+UIDL+LIST took.</summary>
    public readonly record struct Listing(int Messages, long Octets, TimeSpan Login, TimeSpan Total);

    /// <summary>
    /// Connects, logs in, STAT, UIDL, LIST (pipelined in one write when <paramref name="pipelining"/>), checks the counts
    /// agree, QUIT. The times run from before the connect to the login's +OK and to the end of LIST.
    /// </summary>
    public static async Task<Listing> ListAsync(string host, int port, string user, string password, bool pipelining, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        await using var client = await ConnectAsync(host, port, ct).ConfigureAwait(false);
        string[] commands = [$"USER {user}\r\n", $"PASS {password}\r\n", "STAT\r\n", "UIDL\r\n", "LIST\r\n"];
        if (pipelining)
        {
            await client.SendAsync(string.Concat(commands), ct).ConfigureAwait(false);
        }

        async Task<string> Step(int i)
        {
            if (!pipelining)
            {
                await client.SendAsync(commands[i], ct).ConfigureAwait(false);
            }

            return await client.ReadStatusAsync(commands[i].Split(' ', '\r')[0], ct).ConfigureAwait(false);
        }

        await Step(0).ConfigureAwait(false);
        await Step(1).ConfigureAwait(false);
        var login = clock.Elapsed;
        var stat = (await Step(2).ConfigureAwait(false)).Split(' ');
        await Step(3).ConfigureAwait(false);
        var uidl = await client.CountLinesAsync(ct).ConfigureAwait(false);
        await Step(4).ConfigureAwait(false);
        var list = await client.CountLinesAsync(ct).ConfigureAwait(false);
        var total = clock.Elapsed;
        var count = int.Parse(stat[1], System.Globalization.CultureInfo.InvariantCulture);
        if (uidl != count || list != count)
        {
            throw new IOException($"{host}:{port}: STAT says {count} messages, UIDL listed {uidl}, LIST {list}");
        }

        await client.QuitAsync(ct).ConfigureAwait(false);
        return new Listing(count, long.Parse(stat[2], System.Globalization.CultureInfo.InvariantCulture), login, total);
    }

    /// <summary>USER/PASS (pipelined when allowed) and STAT: the message count and octets.</summary>
    public async Task<(int Messages, long Octets)> LoginAsync(string user, string password, bool pipelining, CancellationToken ct)
    {
        if (pipelining)
        {
            await SendAsync($"USER {user}\r\nPASS {password}\r\nSTAT\r\n", ct).ConfigureAwait(false);
            await ReadStatusAsync("USER", ct).ConfigureAwait(false);
            await ReadStatusAsync("PASS", ct).ConfigureAwait(false);
        }
        else
        {
            await SendAsync($"USER {user}\r\n", ct).ConfigureAwait(false);
            await ReadStatusAsync("USER", ct).ConfigureAwait(false);
            await SendAsync($"PASS {password}\r\n", ct).ConfigureAwait(false);
            await ReadStatusAsync("PASS", ct).ConfigureAwait(false);
            await SendAsync("STAT\r\n", ct).ConfigureAwait(false);
        }

        var stat = (await ReadStatusAsync("STAT", ct).ConfigureAwait(false)).Split(' ');
        return (int.Parse(stat[1], System.Globalization.CultureInfo.InvariantCulture), long.Parse(stat[2], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// RETR of each given message number (up to <see cref="Window"/> commands in flight when pipelining); returns the
    /// XXH128 of each message's content as served (dot-unstuffed, CRLF line ends, final CRLF included) and its length.
    /// The digests only tell whether two servers served the same bytes, so a non-cryptographic hash does: SHA-256 cost
    /// this client about as much CPU as the edge spent serving, on a 2-core machine beside the servers it measures.
    /// </summary>
    public async Task<List<(byte[] Digest, long Bytes)>> RetrieveAsync(IReadOnlyList<int> numbers, bool pipelining, CancellationToken ct)
    {
        var results = new List<(byte[], long)>(numbers.Count);
        var hash = new XxHash128();
        var window = pipelining ? Window : 1;
        var sent = 0;
        var commands = new StringBuilder();

        async Task SendMore(int upTo)
        {
            commands.Clear();
            for (; sent < Math.Min(upTo, numbers.Count); sent++)
            {
                commands.Append("RETR ").Append(numbers[sent]).Append("\r\n");
            }

            if (commands.Length > 0)
            {
                await SendAsync(commands.ToString(), ct).ConfigureAwait(false);
            }
        }

        await SendMore(window).ConfigureAwait(false);
        for (var done = 0; done < numbers.Count; done++)
        {
            if (sent - done <= window / 2)
            {
                await SendMore(done + window).ConfigureAwait(false);
            }

            await ReadStatusAsync($"RETR {numbers[done]}", ct).ConfigureAwait(false);
            var bytes = await ReadContentAsync(hash, ct).ConfigureAwait(false);
            results.Add((hash.GetHashAndReset(), bytes));
        }

        return results;
    }

    public async Task QuitAsync(CancellationToken ct)
    {
        await SendAsync("QUIT\r\n", ct).ConfigureAwait(false);
        await ReadStatusAsync("QUIT", ct).ConfigureAwait(false);
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task SendAsync(string text, CancellationToken ct)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        var offset = 0;
        while (offset < bytes.Length)
        {
            offset += await _socket.SendAsync(bytes.AsMemory(offset), SocketFlags.None, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Receives more bytes after the unread ones (moved to the front; the buffer grows for a line longer than it).</summary>
    private async Task FillAsync(CancellationToken ct)
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }

        var n = await _socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, ct).ConfigureAwait(false);
        if (n == 0)
        {
            throw new IOException("the POP3 server closed the connection");
        }

        _end += n;
        Received += n;
    }

    private async Task<string> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            var at = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
            if (at >= 0)
            {
                var line = Encoding.Latin1.GetString(_buffer, _start, at);
                _start += at + 2;
                return line;
            }

            await FillAsync(ct).ConfigureAwait(false);
        }
    }

    private async Task<string> ReadStatusAsync(string what, CancellationToken ct)
    {
        var line = await ReadLineAsync(ct).ConfigureAwait(false);
        return line.StartsWith("+OK", StringComparison.Ordinal) ? line : throw new IOException($"POP3 {what}: {line}");
    }

    /// <summary>Skips a multi-line response's lines up to the terminating "." and returns how many there were.</summary>
    private async Task<int> CountLinesAsync(CancellationToken ct)
    {
        var lines = 0;
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            var at = span.IndexOf("\r\n"u8);
            if (at < 0)
            {
                await FillAsync(ct).ConfigureAwait(false);
                continue;
            }

            _start += at + 2;
            if (at == 1 && span[0] == (byte)'.')
            {
                return lines;
            }

            lines++;
        }
    }

    /// <summary>
    /// Reads a multi-line body up to "CRLF.CRLF", removing the stuffed dot of lines that start with one, and hashes it
    /// in runs between line starts with a dot (the vectorised search for LF-dot keeps the common case one copy-free pass).
    /// </summary>
    private async Task<long> ReadContentAsync(XxHash128 hash, CancellationToken ct)
    {
        long bytes = 0;
        var lineStart = true;
        while (true)
        {
            var span = _buffer.AsSpan(_start, _end - _start);
            if (lineStart)
            {
                if (span.Length < 3)
                {
                    await FillAsync(ct).ConfigureAwait(false);
                    continue;
                }

                lineStart = false;
                if (span[0] == (byte)'.')
                {
                    if (span[1] == (byte)'\r' && span[2] == (byte)'\n')
                    {
                        _start += 3;
                        return bytes;
                    }

                    _start++; // the stuffed dot
                    continue;
                }
            }

            var at = span.IndexOf("\n."u8);
            if (at >= 0)
            {
                hash.Append(span[..(at + 1)]);
                bytes += at + 1;
                _start += at + 1;
                lineStart = true;
                continue;
            }

            // Keep a final LF back: the byte after it may be a dot.
            var take = span.Length > 0 && span[^1] == (byte)'\n' ? span.Length - 1 : span.Length;
            hash.Append(span[..take]);
            bytes += take;
            _start += take;
            await FillAsync(ct).ConfigureAwait(false);
        }
    }

    /// <summary>An order-independent checksum of many messages: SHA-256 over their sorted digests.</summary>
    public static string Checksum(IEnumerable<byte[]> digests)
    {
        var sorted = digests.Select(Convert.ToHexString).Order(StringComparer.Ordinal).ToList();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(string.Concat(sorted))))[..16];
    }
}
