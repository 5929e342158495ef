using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// A loopback POP3 "server" that answers each command line with what a script says, to drive the client into the
/// corners a real server rarely shows (STLS injection, no UIDL, garbled or missing replies). Commands are answered one
/// by one as they are read, so pipelined commands work as on a real server.
/// </summary>
public sealed class ScriptedPop3Server : IAsyncDisposable
{
    /// <summary>
    /// Reply bytes (Latin-1) for a command line; null closes the connection; empty sends nothing and waits; a reply
    /// ending in <see cref="ThenClose"/> is sent and the connection closed.
    /// </summary>
    public delegate string? Script(string command);

    /// <summary>Appended to a reply: close the connection once it is sent (a connection cut in the middle of a reply).</summary>
    public const string ThenClose = "\uFFFF";

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _serving;
    private readonly string _greeting;
    private readonly Script _script;

    public ScriptedPop3Server(Script script, string greeting = "+OK scripted ready\r\n")
    {
        _script = script;
        _greeting = greeting;
        _listener.Start();
        _serving = ServeAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Every command line received, in order.</summary>
    public ConcurrentQueue<string> Received { get; } = new();

    /// <summary>A mailbox of <paramref name="messages"/> with the usual answers; <paramref name="overrides"/> answers first when it returns non-null.</summary>
    public static Script Mailbox(IReadOnlyList<byte[]> messages, string capabilities = "USER\r\nUIDL\r\nTOP\r\nPIPELINING\r\n", Func<string, string?>? overrides = null)
    {
        return command =>
        {
            if (overrides?.Invoke(command) is { } special)
                return special;
            var words = command.Split(' ');
            var verb = words[0].ToUpperInvariant();
            var number = words.Length > 1 && int.TryParse(words[1], out var n) ? n : 0;
            return verb switch
            {
                "CAPA" => "+OK\r\n" + capabilities + ".\r\n",
                "USER" or "PASS" or "NOOP" => "+OK\r\n",
                "LIST" => "+OK\r\n" + string.Concat(messages.Select((m, i) => $"{i + 1} {m.Length}\r\n")) + ".\r\n",
                "UIDL" => "+OK\r\n" + string.Concat(messages.Select((_, i) => $"{i + 1} uid{i + 1}\r\n")) + ".\r\n",
                "RETR" when number >= 1 && number <= messages.Count => "+OK\r\n" + Stuff(Encoding.Latin1.GetString(messages[number - 1])) + ".\r\n",
                "TOP" when number >= 1 && number <= messages.Count => "+OK\r\n" + Stuff(Headers(messages[number - 1])) + ".\r\n",
                "DELE" => "+OK marked\r\n",
                "QUIT" => "+OK bye\r\n",
                _ => "-ERR unknown\r\n",
            };
        };
    }

    /// <summary>The header block of a message, with the empty line that ends it (what TOP n 0 sends).</summary>
    public static string Headers(byte[] message)
    {
        var text = Encoding.Latin1.GetString(message);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return end < 0 ? text : text[..(end + 4)];
    }

    /// <summary>RFC 1939 section 3 byte-stuffing.</summary>
    public static string Stuff(string body)
    {
        var sb = new StringBuilder(body.Length + 16);
        var lineStart = true;
        foreach (var c in body)
        {
            if (lineStart && c == '.')
                sb.Append('.');
            sb.Append(c);
            lineStart = c == '\n';
        }
        if (!lineStart)
            sb.Append("\r\n");
        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _serving;
        }
        catch (OperationCanceledException)
        {
            // Stopped on purpose.
        }
        _stop.Dispose();
    }

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            using (client)
            {
                try
                {
                    await ServeOneAsync(client.GetStream());
                }
                catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
                {
                    // The client went away (or the test ended): wait for the next one.
                }
            }
        }
    }

    private async Task ServeOneAsync(NetworkStream stream)
    {
        await WriteAsync(stream, _greeting);
        using var reader = new StreamReader(stream, Encoding.Latin1, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        while (await reader.ReadLineAsync(_stop.Token) is { } line)
        {
            Received.Enqueue(line);
            var reply = _script(line);
            if (reply is null)
                return;
            if (reply.Length == 0)
            {
                await Task.Delay(Timeout.Infinite, _stop.Token);
                return;
            }
            if (reply.EndsWith(ThenClose, StringComparison.Ordinal))
            {
                await WriteAsync(stream, reply[..^ThenClose.Length]);
                return;
            }
            await WriteAsync(stream, reply);
        }
    }

    private Task WriteAsync(NetworkStream stream, string text) => stream.WriteAsync(Encoding.Latin1.GetBytes(text), _stop.Token).AsTask();
}
