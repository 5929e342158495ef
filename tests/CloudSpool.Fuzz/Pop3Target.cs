using System.IO.Pipelines;
using System.Net;
using System.Text;
using CloudSpool.Pop3;
using CloudSpool.Pop3.Engine;
using CloudSpool.TestSupport.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Fuzz;

/// <summary>
/// The POP3 edge's command reader and state machine: one session of a real <see cref="Pop3Server"/> over an in-memory
/// connection, with the fake maildrop and authenticator of the transcript tests. The input is what the client sends
/// (all of it pipelined, then the client closes its side); after its first NUL byte, if any, come the bytes of one
/// more stored message, served as message 4 through a stream that returns a few bytes per read.
/// </summary>
/// <remarks>
/// Invariants: the session ends; nothing is logged as a failure (an internal error, a message failing mid-transfer, a
/// size that differs from the one announced); every line the server writes ends in CRLF; each command gets exactly one
/// reply and a multi-line reply ends with its "." line; RETR and TOP send exactly the stored bytes, line ends made CRLF
/// and dot-stuffed (the reference in <see cref="Wire"/>).
/// </remarks>
public sealed class Pop3Target : IFuzzTarget
{
    public const string User = "alice";
    public const string Password = "secret";

    private static readonly IPEndPoint Loopback = new(IPAddress.Loopback, 40000);
    private static readonly TimeSpan SessionLimit = TimeSpan.FromSeconds(30);
    private static readonly Encoding Lenient = new UTF8Encoding(false, false);

    /// <summary>The maildrop every session starts with, before the input's own message (as in the transcript tests).</summary>
    private static readonly FakeMessage[] FixedMail =
    [
        new("uid-one", Wire.Bytes("Subject: one\r\n\r\nHello\r\n")),
        new("uid-two", Wire.Bytes("Subject: two\n\n.dot line\nend")),
        new("uid-three", Wire.Bytes("Subject: three\r\n\r\nbinary \0\xff\r\n")),
    ];

    public string Name => "pop3";

    public byte[] Run(byte[] input)
    {
        var split = Array.IndexOf(input, (byte)0);
        var client = split < 0 ? input : input[..split];
        var mail = FixedMail.ToList();
        if (split >= 0)
        {
            var stored = input[(split + 1)..];
            mail.Add(new FakeMessage("uid-input", stored) { Open = () => new TrickleStream(stored, 7) });
        }

        var served = Serve(client, mail, out var logs);
        if (logs.Entries.FirstOrDefault(e => e.Level >= LogLevel.Error || e.Message.Contains("recorded size", StringComparison.Ordinal)) is { Message: not null } bad)
            throw new FuzzFindingException($"pop3: the server logged a failure: {bad.Level} {bad.Message} {bad.Exception}");
        TranscriptCheck.Check(client, served, mail);
        return served;
    }

    private static byte[] Serve(byte[] client, List<FakeMessage> mail, out CapturingLoggerFactory logs)
    {
        logs = new CapturingLoggerFactory();
        var options = new Pop3ServerOptions { FailedLoginDelay = TimeSpan.Zero, HostName = "pop.test", TransferChunkSize = 512 };
        var server = new Pop3Server(options, new FakeAuthenticator((User, Password)), new FakeMaildropProvider().Add(User, mail), logs);
        var toServer = new Pipe();
        var toClient = new Pipe();
        var session = server.RunSessionAsync(
            InMemoryDuplex.Join(toServer.Reader.AsStream(), toClient.Writer.AsStream()), Loopback, isSecure: false, CancellationToken.None);
        var reading = ReadAllAsync(toClient.Reader);
        SendAndCloseAsync(toServer.Writer, client).Wait();
        if (!session.Wait(SessionLimit) || !reading.Wait(SessionLimit))
            throw new FuzzFindingException($"pop3: the session did not end within {SessionLimit} after the client closed its side");
        server.DisposeAsync().AsTask().Wait();
        return reading.Result;
    }

    private static async Task SendAndCloseAsync(PipeWriter writer, byte[] bytes)
    {
        // The server may stop reading early (QUIT, too many bad commands): what it does not read is simply dropped.
        await writer.WriteAsync(bytes).ConfigureAwait(false);
        await writer.CompleteAsync().ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadAllAsync(PipeReader reader)
    {
        using var output = new MemoryStream();
        await reader.CopyToAsync(output).ConfigureAwait(false);
        await reader.CompleteAsync().ConfigureAwait(false);
        return output.ToArray();
    }

    /// <summary>Replays the client's side against the server's replies, the way the session reads commands.</summary>
    private sealed class TranscriptCheck
    {
        private readonly byte[] _client;
        private readonly List<byte[]> _replies;
        private readonly IReadOnlyList<FakeMessage> _mail;
        private int _clientPos;
        private int _next;

        private TranscriptCheck(byte[] client, List<byte[]> replies, IReadOnlyList<FakeMessage> mail)
        {
            _client = client;
            _replies = replies;
            _mail = mail;
        }

        public static void Check(byte[] client, byte[] served, IReadOnlyList<FakeMessage> mail) =>
            new TranscriptCheck(client, SplitLines(served), mail).Walk();

        /// <summary>The server's lines, each with its CRLF; a bare LF is a finding (a bare CR is one outside message data: <see cref="NextReply"/>).</summary>
        private static List<byte[]> SplitLines(byte[] served)
        {
            var lines = new List<byte[]>();
            var start = 0;
            for (var i = 0; i < served.Length; i++)
            {
                if (served[i] == '\n')
                {
                    if (i == 0 || served[i - 1] != '\r')
                        throw new FuzzFindingException($"pop3: a bare LF in the server's output at offset {i}");
                    lines.Add(served[start..(i + 1)]);
                    start = i + 1;
                }
            }
            if (start != served.Length)
                throw new FuzzFindingException($"pop3: the server's output ends with a line without CRLF: {Show(served[start..])}");
            return lines;
        }

        private void Walk()
        {
            if (NextReply() is not { } greeting || !greeting.StartsWith("+OK ", StringComparison.Ordinal))
                throw new FuzzFindingException("pop3: no +OK greeting");
            while (NextCommand(Pop3Session.MaxCommandOctets) is { } command)
            {
                if (NextReply() is not { } status)
                    return; // the server closed the connection (QUIT, too many bad commands, lockout): the rest is unread
                if (command.TooLong)
                {
                    ExpectError(status, "a line over 255 octets");
                    continue;
                }
                var space = command.Text.IndexOf(' ');
                var keyword = space < 0 ? command.Text : command.Text[..space];
                var arguments = space < 0 ? string.Empty : command.Text[(space + 1)..];
                if (status == "+ " && Is(keyword, "AUTH"))
                {
                    if (NextCommand(Pop3Session.MaxSaslResponseOctets) is null || NextReply() is not { } final)
                        return;
                    if (final.StartsWith("+ ", StringComparison.Ordinal))
                        throw new FuzzFindingException("pop3: a second SASL challenge for PLAIN");
                    ExpectStatus(final, command.Text);
                    continue;
                }
                ExpectStatus(status, command.Text);
                if (status.StartsWith("+OK", StringComparison.Ordinal) && IsMultiLine(keyword, arguments))
                    CheckData(keyword, arguments, ReadData(command.Text));
            }
            if (_next < _replies.Count)
                throw new FuzzFindingException($"pop3: {_replies.Count - _next} reply lines after the last command, first: {Show(_replies[_next])}");
        }

        private static bool IsMultiLine(string keyword, string arguments) =>
            Is(keyword, "CAPA") || Is(keyword, "RETR") || Is(keyword, "TOP")
            || ((Is(keyword, "LIST") || Is(keyword, "UIDL") || Is(keyword, "AUTH")) && arguments.Length == 0);

        private static bool Is(string keyword, string verb) => keyword.Equals(verb, StringComparison.OrdinalIgnoreCase);

        private static void ExpectStatus(string status, string command)
        {
            if (status != "+OK" && !status.StartsWith("+OK ", StringComparison.Ordinal) && !status.StartsWith("-ERR ", StringComparison.Ordinal))
                throw new FuzzFindingException($"pop3: reply to {Show(command)} is not a status line: {Show(status)}");
        }

        private static void ExpectError(string status, string what)
        {
            if (!status.StartsWith("-ERR ", StringComparison.Ordinal))
                throw new FuzzFindingException($"pop3: {what} was answered {Show(status)}");
        }

        /// <summary>The lines of a multi-line reply up to and including the "." line.</summary>
        private byte[] ReadData(string command)
        {
            var data = new List<byte>();
            while (true)
            {
                if (_next >= _replies.Count)
                    throw new FuzzFindingException($"pop3: the multi-line reply to {Show(command)} has no terminating \".\" line");
                var line = _replies[_next++];
                data.AddRange(line);
                if (line is [(byte)'.', (byte)'\r', (byte)'\n'])
                    return [.. data];
            }
        }

        private void CheckData(string keyword, string arguments, byte[] data)
        {
            byte[] expected;
            if (Is(keyword, "RETR"))
            {
                expected = Wire.RetrData(_mail[(int)long.Parse(arguments, System.Globalization.CultureInfo.InvariantCulture) - 1].Bytes);
            }
            else if (Is(keyword, "TOP"))
            {
                var parts = arguments.Split(' ');
                var lines = (int)Math.Min(long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), int.MaxValue / 2);
                expected = Wire.TopData(_mail[(int)long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture) - 1].Bytes, lines);
            }
            else
            {
                // LIST, UIDL, CAPA, AUTH: the stuffing rule still holds for every line.
                Wire.Unstuff(data);
                return;
            }
            if (!data.AsSpan().SequenceEqual(expected))
                throw new FuzzFindingException(
                    $"pop3: {keyword} {arguments} sent {data.Length} bytes that differ from the stored message's {expected.Length} at offset {data.AsSpan().CommonPrefixLength(expected)}");
        }

        private string? NextReply()
        {
            if (_next >= _replies.Count)
                return null;
            var line = _replies[_next++];
            if (Array.IndexOf(line, (byte)'\r') < line.Length - 2)
                throw new FuzzFindingException($"pop3: a bare CR in a status line: {Show(line)}");
            return Encoding.Latin1.GetString(line, 0, line.Length - 2);
        }

        /// <summary>The client's next line as the session reads it (Pop3Connection): null at the end (a last line without LF is dropped).</summary>
        private (string Text, bool TooLong)? NextCommand(int maxOctets)
        {
            var lf = Array.IndexOf(_client, (byte)'\n', _clientPos);
            if (lf < 0)
                return null;
            var line = _client.AsSpan(_clientPos, lf + 1 - _clientPos);
            _clientPos = lf + 1;
            if (line.Length > maxOctets)
                return (string.Empty, true);
            var text = line[..^1];
            if (text.EndsWith("\r"u8))
                text = text[..^1];
            return (Lenient.GetString(text), false);
        }

        private static string Show(byte[] bytes) => Show(Encoding.Latin1.GetString(bytes));

        private static string Show(string text) => "\"" + (text.Length > 80 ? text[..80] + "…" : text).ReplaceLineEndings("\\n") + "\"";
    }
}
