using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>RETR and TOP on the wire: tricky bodies byte for byte, sizes, and messages that fail.</summary>
public sealed class MessageTransferTranscriptTests
{
    private static readonly string[] TrickyBodies =
    [
        "",
        ".",
        "\r",
        "\n",
        "no newline at all",
        "Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nmiddle.\r\n",
        "Subject: bare lf\n\nline 1\nline 2\n",
        "Subject: bare cr\r\rline 1\rline 2\r",
        "Subject: mixed\r\n\nA\rB\nC\r\n\r\r\n.\n",
        "Subject: 8bit\r\n\r\n\u00e9\u00e8\u00ff\0\u0001\u007f\u0080 end",
        "Subject: ends in bare cr\r\n\r\nlast\r",
        "Subject: bare cr before a dot\r\n\r\nx\r.y\r\n\r.\r\n",
        "Subject: a\rFrom: b\r\n\r\r\nbody\r\n",
        ".\r\n.\r\n",
    ];

    public static TheoryData<int> TrickyIndexes()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < TrickyBodies.Length; i++)
            data.Add(i);
        return data;
    }

    private static async Task<SessionHarness> LoggedInAsync(IEnumerable<FakeMessage> messages, Action<Pop3ServerOptions>? configure = null)
    {
        var list = messages.ToList();
        var h = await SessionHarness.StartAsync(configure, maildrops: new FakeMaildropProvider().Add("alice", list));
        await h.ExpectAsync("USER alice", "+OK send PASS");
        var total = list.Sum(m => m.Pop3Size);
        await h.ExpectAsync("PASS secret", $"+OK logged in; maildrop has {list.Count} messages ({total} octets)");
        return h;
    }

    [Theory]
    [MemberData(nameof(TrickyIndexes))]
    public async Task Retr_of_a_tricky_body_is_exact_on_the_wire_and_its_unstuffed_octets_equal_the_ingest_size(int index)
    {
        var stored = Wire.Bytes(TrickyBodies[index]);
        // Served as stored in one piece, and trickled a few bytes per read to cross every chunk boundary.
        var whole = new FakeMessage("whole", stored);
        var trickled = new FakeMessage("trickled", stored) { Open = () => new TrickleStream(stored, 3) };
        await using var h = await LoggedInAsync([whole, trickled], o => o.TransferChunkSize = 512);
        foreach (var number in new[] { 1, 2 })
        {
            await h.ExpectAsync("RETR " + number, $"+OK {Wire.Pop3Size(stored)} octets");
            var data = await h.Client.ReadDataAsync();
            Assert.Equal(Wire.Text(Wire.RetrData(stored)), Wire.Text(data));
            var unstuffed = Wire.Unstuff(data);
            var extraCrlf = unstuffed.Length > Wire.NormalizeCrlf(stored).Length ? 2 : 0;
            Assert.Equal(Wire.Pop3Size(stored), unstuffed.Length - extraCrlf);
            Assert.Equal(Wire.Text(Wire.AsReceived(stored)), Wire.Text(unstuffed));
        }
        Assert.DoesNotContain(h.Logs.Entries, e => e.Message.Contains("recorded size"));
    }

    [Theory]
    [MemberData(nameof(TrickyIndexes))]
    public async Task Top_of_a_tricky_body_is_exact_on_the_wire(int index)
    {
        var stored = Wire.Bytes(TrickyBodies[index]);
        await using var h = await LoggedInAsync([new FakeMessage("m", stored)]);
        foreach (var lines in new[] { 0, 1, 2, 50 })
        {
            await h.ExpectAsync($"TOP 1 {lines}", "+OK top of message follows");
            Assert.Equal(Wire.Text(Wire.TopData(stored, lines)), Wire.Text(await h.Client.ReadDataAsync()));
        }
    }

    [Fact]
    public async Task Retr_of_every_corpus_message_is_exact_and_as_large_as_announced()
    {
        var corpus = TestCorpus.AsMessages();
        await using var h = await LoggedInAsync(corpus);
        for (var i = 0; i < corpus.Count; i++)
        {
            var stored = corpus[i].Bytes;
            await h.ExpectAsync("RETR " + (i + 1), $"+OK {corpus[i].Pop3Size} octets");
            var data = await h.Client.ReadDataAsync();
            Assert.True(Wire.RetrData(stored).AsSpan().SequenceEqual(data), corpus[i].Uidl);
            Assert.True(Wire.AsReceived(stored).AsSpan().SequenceEqual(Wire.Unstuff(data)), corpus[i].Uidl);
        }
        Assert.DoesNotContain(h.Logs.Entries, e => e.Message.Contains("recorded size"));
    }

    [Fact]
    public async Task Message_that_cannot_be_opened_fails_only_its_own_retr()
    {
        var broken = new FakeMessage("broken", Wire.Bytes("Subject: x\r\n\r\nbody\r\n")) { Open = () => throw new IOException("blob missing") };
        await using var h = await LoggedInAsync([SessionHarness.One, broken, SessionHarness.Three]);
        await h.ExpectAsync("RETR 2", "-ERR [SYS/TEMP] message 2 cannot be read right now; the other messages are not affected, try it again later");
        await h.ExpectAsync("TOP 2 0", "-ERR [SYS/TEMP] message 2 cannot be read right now; the other messages are not affected, try it again later");
        await h.ExpectAsync("STAT", "+OK 3 72");
        await h.ExpectAsync("RETR 3", "+OK 29 octets");
        Assert.Equal("Subject: three\r\n\r\nbinary \0\xff\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
        await h.ExpectAsync("DELE 2", "+OK message 2 deleted");
        await h.ExpectAsync("QUIT", "+OK CloudSpool signing off (2 messages left)");
        Assert.Contains(h.Logs.Entries, e => e.Message.Contains("message 2 (broken) unavailable"));
    }

    [Fact]
    public async Task Message_whose_first_read_fails_fails_only_its_own_retr()
    {
        var broken = new FakeMessage("broken", Wire.Bytes("Subject: x\r\n\r\nbody\r\n")) { Open = () => new FailingStream([], 0) };
        await using var h = await LoggedInAsync([broken, SessionHarness.One]);
        await h.ExpectAsync("RETR 1", "-ERR [SYS/TEMP] message 1 cannot be read right now; the other messages are not affected, try it again later");
        await h.ExpectAsync("RETR 2", "+OK 23 octets");
        Assert.Equal("Subject: one\r\n\r\nHello\r\n.\r\n", Wire.Text(await h.Client.ReadDataAsync()));
    }

    [Fact]
    public async Task Message_failing_mid_transfer_closes_the_connection_without_a_terminator_and_commits_nothing()
    {
        var body = Wire.Bytes("Subject: big\r\n\r\n" + string.Concat(Enumerable.Repeat("0123456789abcdef\r\n", 4000)));
        var broken = new FakeMessage("broken", body) { Open = () => new FailingStream(body, 20000) };
        await using var h = await LoggedInAsync([SessionHarness.One, broken], o => o.TransferChunkSize = 4096);
        await h.ExpectAsync("DELE 1", "+OK message 1 deleted");
        await h.ExpectAsync("RETR 2", $"+OK {broken.Pop3Size} octets");
        var rest = await h.Client.ReadToEndAsync();
        Assert.True(rest.Length >= 4096, "part of the message was sent: " + rest.Length);
        Assert.True(rest.Length < body.Length);
        Assert.False(rest.AsSpan().EndsWith("\r\n.\r\n"u8), "a truncated message must not look complete");
        await h.WaitForEndAsync();
        Assert.Empty(h.Maildrop.Commits);
        Assert.True(h.Maildrop.Disposed);
        Assert.Contains(h.Logs.Entries, e => e.Message.Contains("failed while being sent"));
    }

    [Fact]
    public async Task A_slow_store_is_waited_for_read_by_read_and_one_that_stops_answering_ends_the_transfer()
    {
        var body = Wire.Bytes("Subject: slow\r\n\r\n" + string.Concat(Enumerable.Repeat("0123456789abcdef\r\n", 600)));
        // Every read waits 100 ms, 13 reads in all: longer than the 1 s timeout, but no single wait comes near it.
        var slow = new FakeMessage("slow", body) { Open = () => new PausingStream(body, body.Length / 12 + 1, TimeSpan.FromMilliseconds(100)) };
        // The first read at once; the store then answers no more.
        var stuck = new FakeMessage("stuck", body) { Open = () => new PausingStream(body, 4096, TimeSpan.Zero, hangAfter: 1) };
        var mute = new FakeMessage("mute", body) { Open = () => new PausingStream(body, 4096, TimeSpan.Zero, hangAfter: 0) };
        await using var h = await LoggedInAsync([slow, mute, stuck], o =>
        {
            o.TransferChunkSize = 4096;
            o.IdleTimeoutAfterLogin = TimeSpan.FromSeconds(1);
        });

        await h.ExpectAsync("RETR 1", $"+OK {slow.Pop3Size} octets");
        var sent = await h.Client.ReadDataAsync();
        Assert.True(Wire.RetrData(body).AsSpan().SequenceEqual(sent));

        // Nothing read at all within the timeout: this RETR fails, the session goes on.
        await h.ExpectAsync("RETR 2", "-ERR [SYS/TEMP] message 2 cannot be read right now; the other messages are not affected, try it again later");

        // Silent after the first chunk: the connection ends without the terminating line.
        await h.ExpectAsync("RETR 3", $"+OK {stuck.Pop3Size} octets");
        var rest = await h.Client.ReadToEndAsync();
        Assert.InRange(rest.Length, 4096, body.Length - 1);
        Assert.False(rest.AsSpan().EndsWith("\r\n.\r\n"u8), "a truncated message must not look complete");
        await h.WaitForEndAsync();
        Assert.Contains(h.Logs.Entries, e => e.Message.Contains("failed while being sent"));
    }

    [Fact]
    public async Task Large_message_streams_through_a_small_chunk_without_loss()
    {
        var random = new Random(8314);
        var body = new byte[3 * 1024 * 1024 + 17];
        random.NextBytes(body);
        var message = new FakeMessage("large", body);
        await using var h = await LoggedInAsync([message], o => o.TransferChunkSize = 4096);
        await h.ExpectAsync("RETR 1", $"+OK {message.Pop3Size} octets");
        var data = await h.Client.ReadDataAsync();
        Assert.True(Wire.RetrData(body).AsSpan().SequenceEqual(data));
    }

    [Fact]
    public async Task Wrong_recorded_size_is_logged_but_the_stored_bytes_are_sent()
    {
        var stored = Wire.Bytes("Subject: s\r\n\r\nbody\r\n"); // 20 octets on the wire, recorded as 5
        var logs = new CapturingLoggerFactory();
        await using var server = new Pop3Server(
            SessionHarness.TestOptions(), new FakeAuthenticator(("alice", "secret")), new WrongSizeProvider(stored), logs);
        var (serverSide, clientSide) = InMemoryDuplex.CreatePair();
        var session = server.RunSessionAsync(serverSide, SessionHarness.Loopback, isSecure: false, CancellationToken.None);
        await using var client = new WireClient(clientSide);
        await client.SendAsync("USER alice\r\nPASS secret\r\nRETR 1\r\nQUIT\r\n");
        Assert.Equal(
            "+OK CloudSpool POP3 server ready\r\n+OK send PASS\r\n+OK logged in; maildrop has 1 messages (5 octets)\r\n" +
            "+OK 5 octets\r\nSubject: s\r\n\r\nbody\r\n.\r\n+OK CloudSpool signing off (1 messages left)\r\n",
            Wire.Text(await client.ReadToEndAsync()));
        await session.WaitAsync(WireClient.Patience);
        Assert.Contains(logs.Entries, e => e.Message.Contains("sent 20 octets, its recorded size is 5"));
    }

    private sealed class WrongSizeProvider(byte[] stored) : IMaildropProvider
    {
        public ValueTask<Pop3MaildropResult> OpenAsync(Pop3Identity identity, CancellationToken cancellationToken) =>
            ValueTask.FromResult(Pop3MaildropResult.Opened(new WrongSizeMaildrop(stored)));
    }

    private sealed class WrongSizeMaildrop(byte[] stored) : IMaildrop
    {
        public IReadOnlyList<Pop3MessageInfo> Messages { get; } = [new("m", 5)];
        public ValueTask<Stream> OpenAsync(int index, CancellationToken cancellationToken) => ValueTask.FromResult<Stream>(new MemoryStream(stored));
        public ValueTask CommitDeletesAsync(IReadOnlySet<int> indexes, CancellationToken cancellationToken) => ValueTask.CompletedTask;
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
