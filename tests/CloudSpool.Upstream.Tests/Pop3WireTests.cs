using System.Text;
using CloudSpool.Upstream.Pop3;

namespace CloudSpool.Upstream.Tests;

/// <summary>The POP3 client's byte layer on transcripts: exact bytes in, exact bytes out, however the reads are split.</summary>
public sealed class Pop3WireTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Dot_stuffed_lines_lose_one_dot_and_the_terminator_ends_the_data()
    {
        var wire = Wire("+OK 5 octets\r\n..a\r\nb\r\n..\r\n...x\r\n.\r\n+OK next\r\n");

        Assert.Equal("+OK 5 octets", await wire.ReadLineAsync(default));
        var data = await ReadDataAsync(wire);

        Assert.Equal(".a\r\nb\r\n.\r\n..x\r\n", Encoding.Latin1.GetString(data));
        // What follows the terminator belongs to the next (pipelined) reply.
        Assert.Equal("+OK next", await wire.ReadLineAsync(default));
    }

    [Fact]
    public async Task Data_is_the_same_whatever_the_size_of_each_read()
    {
        var body = ".leading dot\r\n..\r\n.\r.\r\nmid.dle\r\n\r\n..x\r\r\n\n.\r\n\r.\n" + new string('z', 300) + "\r\nend\r\n";
        var transcript = "+OK\r\n" + Stuff(body) + ".\r\n+OK after\r\n";
        var expected = Encoding.Latin1.GetBytes(body);

        for (var chunk = 1; chunk <= transcript.Length; chunk++)
        {
            var wire = Wire(transcript, chunk, maxLineLength: 16, bufferSize: 40);
            Assert.Equal("+OK", await wire.ReadLineAsync(default));
            Assert.Equal(expected, await ReadDataAsync(wire));
            Assert.Equal("+OK after", await wire.ReadLineAsync(default));
        }
    }

    [Fact]
    public async Task The_terminator_split_across_reads_at_every_position_is_recognised()
    {
        const string transcript = "+OK\r\nab\r\n.\r\n+OK tail\r\n";
        // One byte per read: "." then "\r" then "\n" arrive alone.
        var wire = Wire(transcript, chunk: 1);
        Assert.Equal("+OK", await wire.ReadLineAsync(default));
        Assert.Equal("ab\r\n"u8.ToArray(), await ReadDataAsync(wire));
        Assert.Equal("+OK tail", await wire.ReadLineAsync(default));
    }

    [Fact]
    public async Task Bare_cr_and_lf_are_kept_and_a_bare_lf_starts_a_line_as_in_mailkit()
    {
        // A line starts after any LF; ".\n" also ends the data (some UNIX servers), as MailKit's Pop3Stream does.
        var wire = Wire("+OK\r\na\rb\nc\r\nx\n..y\r\n\r\r\n.\n");
        await wire.ReadLineAsync(default);
        Assert.Equal("a\rb\nc\r\nx\n.y\r\n\r\r\n", Encoding.Latin1.GetString(await ReadDataAsync(wire)));
    }

    [Fact]
    public async Task Eight_bit_and_nul_bytes_pass_unchanged()
    {
        var body = new List<byte>();
        for (var b = 0; b < 256; b++)
        {
            if (b != '\n')
                body.Add((byte)b);
        }
        body.AddRange("\r\n"u8.ToArray());
        body.AddRange([0, 0, (byte)'.', 0xFF, (byte)'\r', (byte)'\n']);
        var transcript = "+OK\r\n"u8.ToArray().Concat(body).Concat(".\r\n"u8.ToArray()).ToArray();

        foreach (var chunk in new[] { 1, 2, 3, 7, 1000 })
        {
            var wire = new Pop3Wire(new TrickleStream(transcript, chunk), Timeout, maxLineLength: 16, bufferSize: 32);
            await wire.ReadLineAsync(default);
            Assert.Equal(body.ToArray(), await ReadDataAsync(wire));
        }
    }

    [Fact]
    public async Task A_data_line_much_longer_than_the_buffer_streams_through()
    {
        var line = new string('q', 1_000_000);
        var wire = Wire("+OK\r\n" + line + "\r\n.\r\n", chunk: 4096, maxLineLength: 16, bufferSize: 64);
        await wire.ReadLineAsync(default);
        Assert.Equal(line.Length + 2, (await ReadDataAsync(wire)).Length);
    }

    [Fact]
    public async Task A_reply_line_over_the_cap_is_refused()
    {
        var wire = Wire("+OK " + new string('a', 100) + "\r\n", maxLineLength: 64, bufferSize: 128);
        await Assert.ThrowsAsync<UpstreamPop3ProtocolException>(async () => await wire.ReadLineAsync(default));

        // Exactly at the cap is fine.
        var fits = Wire("+OK " + new string('a', 60) + "\r\n", chunk: 1, maxLineLength: 64, bufferSize: 128);
        Assert.Equal(64, (await fits.ReadLineAsync(default)).Length);
    }

    [Fact]
    public async Task An_endless_line_without_lf_is_refused_without_growing()
    {
        var wire = new Pop3Wire(new EndlessStream((byte)'a'), Timeout, maxLineLength: 1024, bufferSize: 4096);
        await Assert.ThrowsAsync<UpstreamPop3ProtocolException>(async () => await wire.ReadLineAsync(default));
    }

    [Theory]
    [InlineData("+OK\r\nsome data\r\nand more")]
    [InlineData("+OK\r\nsome data\r\n.")]
    [InlineData("+OK\r\nsome data\r\n.\r")]
    [InlineData("+OK\r\n")]
    public async Task End_of_stream_inside_a_message_is_an_error(string transcript)
    {
        var wire = Wire(transcript, chunk: 3);
        await wire.ReadLineAsync(default);
        await Assert.ThrowsAsync<EndOfStreamException>(async () => await ReadDataAsync(wire));
    }

    [Fact]
    public async Task A_silent_server_times_out()
    {
        var wire = new Pop3Wire(new SilentStream(), TimeSpan.FromMilliseconds(200));
        var started = DateTime.UtcNow;
        await Assert.ThrowsAsync<TimeoutException>(async () => await wire.ReadLineAsync(default));
        await Assert.ThrowsAsync<TimeoutException>(async () => await wire.ReadMultilineAsync(Stream.Null, default));
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(350), TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Cancellation_by_the_caller_is_not_a_timeout()
    {
        var wire = new Pop3Wire(new SilentStream(), TimeSpan.FromSeconds(30));
        using var cts = new CancellationTokenSource(100);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await wire.ReadLineAsync(cts.Token));
    }

    [Fact]
    public async Task Multiline_text_replies_are_unstuffed_line_by_line()
    {
        var wire = Wire("1 120\r\n..x\r\n.\r\n");
        Assert.Equal("1 120", await wire.ReadMultilineLineAsync(default));
        Assert.Equal(".x", await wire.ReadMultilineLineAsync(default));
        Assert.Null(await wire.ReadMultilineLineAsync(default));
    }

    [Fact]
    public async Task Queued_commands_go_out_in_one_write_and_line_breaks_inside_are_refused()
    {
        var stream = new TrickleStream([], 1);
        var wire = new Pop3Wire(stream, Timeout);
        wire.QueueLine("RETR 1");
        wire.QueueLine("DELE 1");
        Assert.Throws<ArgumentException>(() => wire.QueueLine("PASS x\r\nDELE 2"));
        await wire.FlushAsync(default);

        Assert.Equal("RETR 1\r\nDELE 1\r\n", Encoding.ASCII.GetString(stream.Written.ToArray()));
        Assert.Equal(1, stream.Writes);
    }

    [Fact]
    public async Task Copying_a_large_message_allocates_far_less_than_its_size()
    {
        // 16 MB of 76-character lines, some dot-stuffed; the source completes synchronously, so the whole copy runs on
        // this thread and GC.GetAllocatedBytesForCurrentThread sees every allocation. A Release build allocates next to
        // nothing; a Debug build allocates one async state machine per read and per write (about 250 KB here).
        var line = Encoding.ASCII.GetBytes(new string('m', 74) + "\r\n");
        var stuffed = "..dot line\r\n"u8.ToArray();
        using var source = new MemoryStream();
        source.Write("+OK\r\n"u8);
        for (var i = 0; source.Length < 16 << 20; i++)
            source.Write(i % 100 == 0 ? stuffed : line);
        source.Write(".\r\n"u8);
        source.Position = 0;
        var wire = new Pop3Wire(source, Timeout);
        await wire.ReadLineAsync(default);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var written = await wire.ReadMultilineAsync(Stream.Null, default);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(written > 16_000_000);
        Assert.True(allocated < 1 << 20, $"copying {written} bytes allocated {allocated} bytes");
    }

    private static Pop3Wire Wire(string transcript, int chunk = int.MaxValue, int maxLineLength = Pop3Wire.DefaultMaxLineLength, int bufferSize = Pop3Wire.DefaultBufferSize) =>
        new(new TrickleStream(Encoding.Latin1.GetBytes(transcript), chunk), Timeout, maxLineLength, bufferSize);

    private static async Task<byte[]> ReadDataAsync(Pop3Wire wire)
    {
        using var destination = new MemoryStream();
        var written = await wire.ReadMultilineAsync(destination, default);
        Assert.Equal(destination.Length, written);
        return destination.ToArray();
    }

    /// <summary>RFC 1939 section 3 byte-stuffing: a line that starts with "." gets another one (a line starts after LF).</summary>
    private static string Stuff(string body)
    {
        var sb = new StringBuilder();
        var lineStart = true;
        foreach (var c in body)
        {
            if (lineStart && c == '.')
                sb.Append('.');
            sb.Append(c);
            lineStart = c == '\n';
        }
        return sb.ToString();
    }

    /// <summary>Serves the given bytes at most <c>chunk</c> at a time, then end of stream; records what is written.</summary>
    private sealed class TrickleStream(byte[] input, int chunk) : Stream
    {
        private int _position;

        public MemoryStream Written { get; } = new();
        public int Writes { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(Math.Min(chunk, buffer.Length), input.Length - _position);
            input.AsSpan(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override void Write(byte[] buffer, int offset, int count)
        {
            Written.Write(buffer, offset, count);
            Writes++;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Written.Write(buffer.Span);
            Writes++;
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>A peer that never sends anything.</summary>
    private sealed class SilentStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) { }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            return 0;
        }
    }

    /// <summary>A peer that sends one byte value forever.</summary>
    private sealed class EndlessStream(byte value) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            buffer.Fill(value);
            return buffer.Length;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));
    }
}
