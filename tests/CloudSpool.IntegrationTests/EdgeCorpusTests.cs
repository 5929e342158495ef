using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Edge;
using CloudSpool.Pop3;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The test corpus, and hostile line ends built here, served byte for byte as Dovecot serves them: every message
/// delivered into a real Dovecot maildir, and into the spool (put directly, and the corpus also as pulled from that
/// Dovecot); then LIST, RETR and TOP from both servers with the same raw client, which undoes nothing.
/// </summary>
public sealed class EdgeCorpusTests : DovecotAndSpoolTest
{
    private static readonly string[] Commands = ["RETR {0}", "TOP {0} 0", "TOP {0} 5"];

    /// <summary>TOP at several depths: where the header ends and which bytes end a body line both show.</summary>
    private static readonly string[] HostileCommands = ["RETR {0}", "TOP {0} 0", "TOP {0} 1", "TOP {0} 2", "TOP {0} 5", "TOP {0} 100000"];

    /// <summary>
    /// Messages a broken mailer or binary junk makes: bare CRs (sent as stored, a line end for nothing), bare LFs (sent as
    /// CRLF), no final line end (a CRLF added before the dot, not counted). None starts with "." (Dovecot 2.3 does not
    /// stuff a dot that starts a message; the edge does, as RFC 1939 asks) or is empty.
    /// </summary>
    private static List<(string Name, byte[] Raw)> HostileMessages()
    {
        static byte[] L(string text) => Encoding.Latin1.GetBytes(text);
        var binary = new byte[200 * 1024];
        var random = new Random(16);
        random.NextBytes(binary);
        for (var i = 0; i < binary.Length; i += random.Next(1, 40))
            binary[i] = "\r\r\n\0."u8[random.Next(5)];
        return
        [
            ("header block separated by bare CRs", L("From: a@example.org\rTo: b@example.org\rSubject: cr\r\rbody\r")),
            ("bare CR in header", L("From: a@example.org\rSubject: bare CR in a header line\r\n\r\nbody 1\r\nbody 2\r\n")),
            ("bare CR in body", L("Subject: bare CR in body\r\n\r\nl1\rl2\r\nl3\r\r\nl4\r\nl5\r\n")),
            ("CR at the very end", L("Subject: ends in CR\r\n\r\nlast line\r")),
            ("CRLF then CR at the end", L("Subject: ends in CRLF CR\r\n\r\nlast line\r\n\r")),
            ("CR before a dot", L("Subject: dots\r\n\r\nx\r.y\r\n.z\r\n\r.\r\n\r.\r\nend\r\n")),
            ("header ended by CR CR LF", L("Subject: a\r\n\r\r\nb1\r\nb2\r\n")),
            ("header ended by a line starting with CR", L("Subject: a\r\n\r not empty\r\nb1\r\nb2\r\n")),
            ("header line ending in CR CR LF", L("Subject: a\r\r\nTo: b\r\n\r\nb1\r\n")),
            ("first line starts with CR", L("\rSubject: a\r\nb1\r\n\r\nb2\r\n")),
            ("binary with NULs and lone CRs", [.. L("Subject: binary\r\nContent-Type: application/octet-stream\r\n\r\n"), .. binary]),
            ("no final newline", L("Subject: no final newline\r\n\r\nl1\r\nlast")),
            ("bare LF", L("Subject: bare LF\nTo: b\n\nl1\nl2\n.dot\n")),
            ("header ended by LF CR LF", L("Subject: a\n\r\nb1\nb2\n")),
            ("mixed", L("Subject: mixed\r\nTo: b\n\r\nl1\rl2\nl3\r\n\r\r\n.x\rend")),
            ("NUL before CR in header", L("Subject: a\0\r\nTo: b\0\r\0\r\n\r\nb1\r\n")),
        ];
    }

    private static async Task<Pop3Server> StartServerAsync(SpoolEdge edge)
    {
        var server = edge.CreateServer(new Pop3ServerOptions { FailedLoginDelay = TimeSpan.Zero });
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        return server;
    }

    /// <summary>
    /// What Dovecot (message <paramref name="dovecotNumber"/>) and the edge (message <paramref name="edgeNumber"/>)
    /// answer, compared; the edge's LIST size must be Dovecot's plus <paramref name="sizeAllowance"/>.
    /// </summary>
    private static async Task<List<string>> CompareAsync(
        RawPop3Client dovecot, int dovecotNumber, long dovecotSize, RawPop3Client edge, int edgeNumber, long edgeSize, string name, long sizeAllowance = 0,
        string[]? commands = null)
    {
        var differences = new List<string>();
        if (dovecotSize + sizeAllowance != edgeSize)
            differences.Add($"{name}: LIST size {edgeSize}, Dovecot {dovecotSize}");
        foreach (var command in commands ?? Commands)
        {
            var expected = await dovecot.MultiLineAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, command, dovecotNumber));
            var actual = await edge.MultiLineAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, command, edgeNumber));
            if (!expected.AsSpan().SequenceEqual(actual))
                differences.Add($"{name}: {command} differs at octet {expected.AsSpan().CommonPrefixLength(actual)} (edge {actual.Length} octets, Dovecot {expected.Length})");
        }
        return differences;
    }

    [Fact]
    public async Task Every_corpus_file_stored_directly_is_served_as_dovecot_serves_it()
    {
        // One Dovecot user per file, so each is message 1 there; the spool keeps identical files once, so the edge
        // mailbox holds the distinct files in corpus order.
        var files = CloudSpool.TestSupport.Corpus.Files();
        var distinct = new List<(string File, byte[] Raw, string DovecotUser)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < files.Count; i++)
        {
            var raw = await File.ReadAllBytesAsync(files[i]);
            if (!seen.Add(Convert.ToHexString(SHA256.HashData(raw))))
                continue;
            var user = $"file{i:D2}";
            Dovecot.AddUser(user, "pw");
            Dovecot.DeliverRaw(user, raw);
            await Spool.PutAsync("direct", raw);
            distinct.Add((Path.GetFileName(files[i]), raw, user));
        }
        Assert.True(distinct.Count >= 20, "corpus too small: " + distinct.Count);
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("direct", "direct", Pop3Passwords.Hash("pw")), CancellationToken.None));

        await using var spoolEdge = Spool.Runtime.CreateEdge();
        await using var server = await StartServerAsync(spoolEdge);
        await using var edge = await RawPop3Client.LogInAsync(server.LocalEndPoints[0].Port, "direct", "pw");
        var edgeSizes = await edge.ListAsync();
        Assert.Equal(distinct.Count, edgeSizes.Count);
        var differences = new List<string>();
        for (var k = 0; k < distinct.Count; k++)
        {
            var (name, _, user) = distinct[k];
            await using var dovecot = await RawPop3Client.LogInAsync(Dovecot.Pop3Port, user, "pw");
            var dovecotSizes = await dovecot.ListAsync();
            differences.AddRange(await CompareAsync(dovecot, 1, Assert.Single(dovecotSizes).Value, edge, k + 1, edgeSizes[k + 1], name));
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        // The corpus has what makes this interesting: bare-LF files, and files without a final line end (both
        // servers end their last line with a CRLF that the size does not count).
        Assert.Contains(distinct, d => d.Raw.AsSpan().IndexOf("\r\n"u8) < 0 && d.Raw.AsSpan().IndexOf((byte)'\n') >= 0);
        Assert.Contains(distinct, d => d.Raw[^1] != '\n');
    }

    [Fact]
    public async Task Every_corpus_file_pulled_from_dovecot_is_served_as_dovecot_serves_it()
    {
        Dovecot.AddUser("corpus", "pw");
        foreach (var file in TestMail.CorpusFiles())
            Dovecot.DeliverRaw("corpus", await File.ReadAllBytesAsync(file));
        var run = await Spool.PullAsync(PullHarness.Account(Dovecot, "corpus", "corpus", "pw", "pulled"));
        Assert.Equal((RunOutcome.Succeeded, 0), (run.Outcome, run.FailedMessages));
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("pulled", "pulled", Pop3Passwords.Hash("pw")), CancellationToken.None));
        var stored = await Spool.ListAsync("pulled");

        await using var spoolEdge = Spool.Runtime.CreateEdge();
        await using var server = await StartServerAsync(spoolEdge);
        await using var edge = await RawPop3Client.LogInAsync(server.LocalEndPoints[0].Port, "pulled", "pw");
        await using var dovecot = await RawPop3Client.LogInAsync(Dovecot.Pop3Port, "corpus", "pw");
        var edgeSizes = await edge.ListAsync();
        var edgeUidls = await edge.UidlAsync();
        var dovecotSizes = await dovecot.ListAsync();
        var dovecotNumbers = (await dovecot.UidlAsync()).ToDictionary(p => "u:" + p.Value, p => p.Key, StringComparer.Ordinal);
        Assert.Equal(stored.Count, edgeSizes.Count);

        // Deliberate difference: a message whose upstream copy has no final line end reaches the pull job with the
        // CRLF Dovecot put before the terminating dot (POP3 cannot tell it from the message's own), so the spool
        // keeps it and the edge counts it: the edge's size is Dovecot's plus 2 there, and the bytes on the wire are
        // the same.
        var withoutFinalLineEnd = CloudSpool.TestSupport.Corpus.Files().Select(File.ReadAllBytes).Where(raw => raw[^1] != '\n').ToList();
        Assert.NotEmpty(withoutFinalLineEnd);
        var differences = new List<string>();
        var grown = 0;
        foreach (var (number, uidl) in edgeUidls)
        {
            // The edge serves the spool's message with this UIDL; the spool knows where it came from upstream.
            var message = stored.Single(m => m.Uidl == uidl);
            var upstream = dovecotNumbers[message.SourceKey];
            var allowance = edgeSizes[number] == dovecotSizes[upstream] + 2 ? 2 : 0;
            grown += allowance / 2;
            differences.AddRange(await CompareAsync(dovecot, upstream, dovecotSizes[upstream], edge, number, edgeSizes[number], message.SourceKey, allowance));
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        Assert.Equal(withoutFinalLineEnd.Count, grown);
    }

    /// <summary>
    /// The octets of a RETR payload as LIST counts them: without the stuffing dots, the terminating line and the CRLF
    /// added after a last line without LF.
    /// </summary>
    private static long CountedOctets(byte[] payload, byte[] stored)
    {
        var dotsAtLineStart = 0;
        for (var i = 0; i < payload.Length; i++)
        {
            if (payload[i] == '.' && (i == 0 || payload[i - 1] == '\n'))
                dotsAtLineStart++;
        }
        // Every dot at a line start is a stuffing dot but the terminator's.
        return payload.Length - ".\r\n".Length - (dotsAtLineStart - 1) - (stored[^1] != '\n' ? 2 : 0);
    }

    private async Task<RawPop3Client> LogInToEdgeAsync(Pop3Server server, string mailbox)
    {
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User(mailbox, mailbox, Pop3Passwords.Hash("pw")), CancellationToken.None));
        return await RawPop3Client.LogInAsync(server.LocalEndPoints[0].Port, mailbox, "pw");
    }

    [Fact]
    public async Task Hostile_line_ends_are_served_as_dovecot_serves_them_and_list_counts_what_retr_sends()
    {
        var hostile = HostileMessages();
        Dovecot.AddUser("hostile", "pw");
        foreach (var (_, raw) in hostile)
        {
            Dovecot.DeliverRaw("hostile", raw);
            await Spool.PutAsync("hostile", raw);
        }

        await using var spoolEdge = Spool.Runtime.CreateEdge();
        await using var server = await StartServerAsync(spoolEdge);
        await using var edge = await LogInToEdgeAsync(server, "hostile");
        await using var dovecot = await RawPop3Client.LogInAsync(Dovecot.Pop3Port, "hostile", "pw");
        var edgeSizes = await edge.ListAsync();
        var dovecotSizes = await dovecot.ListAsync();
        Assert.Equal(hostile.Count, edgeSizes.Count);
        var differences = new List<string>();
        var (dovecotStat, edgeStat) = (await dovecot.CommandAsync("STAT"), await edge.CommandAsync("STAT"));
        if (dovecotStat != edgeStat)
            differences.Add($"STAT {edgeStat}, Dovecot {dovecotStat}");
        for (var n = 1; n <= hostile.Count; n++)
        {
            var (name, raw) = hostile[n - 1];
            differences.AddRange(await CompareAsync(dovecot, n, dovecotSizes[n], edge, n, edgeSizes[n], name, commands: HostileCommands));
            var sent = CountedOctets(await edge.MultiLineAsync($"RETR {n}"), raw);
            if (sent != edgeSizes[n])
                differences.Add($"{name}: LIST size {edgeSizes[n]}, RETR sent {sent}");
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }

    /// <summary>What the edge sent before size rule 2: every bare CR and every bare LF as CRLF.</summary>
    private static byte[] OldRuleWire(byte[] raw) =>
        Encoding.Latin1.GetBytes(Regex.Replace(Encoding.Latin1.GetString(raw), "\r\n|\r|\n", "\r\n"));

    [Fact]
    public async Task Rows_sized_by_the_old_bare_cr_rule_still_send_what_list_announces()
    {
        // Rows as versions before size rule 2 wrote them: no Pop3SizeRule, and a size that counted a bare CR as CRLF.
        byte[][] old =
        [
            Encoding.Latin1.GetBytes("Subject: old row with bare CRs\r\n\r\nl1\rl2\r\nl3\r\n"),
            Encoding.Latin1.GetBytes("Subject: old row with bare LFs\n\nl1\nl2\n"),
            Encoding.Latin1.GetBytes("Subject: old row with CRLF only\r\n\r\nl1\r\n"),
        ];
        Dovecot.AddUser("old", "pw");
        var messages = Spool.Runtime.Storage.Messages;
        foreach (var raw in old)
        {
            Dovecot.DeliverRaw("old", raw);
            var row = await Spool.PutLegacyAsync("old", raw);
            Assert.Equal(2, row.GetInt32("Pop3SizeRule")); // what the last version of rows wrote
            row.Remove("Pop3SizeRule");
            row["Pop3Size"] = (long)OldRuleWire(raw).Length;
            await messages.UpdateEntityAsync(row, Azure.ETag.All, TableUpdateMode.Replace);
        }

        await using var spoolEdge = Spool.Runtime.CreateEdge();
        await using var server = await StartServerAsync(spoolEdge);
        await using var edge = await LogInToEdgeAsync(server, "old");
        await using var dovecot = await RawPop3Client.LogInAsync(Dovecot.Pop3Port, "old", "pw");
        var sizes = await edge.ListAsync();
        Assert.Equal(old.Select(raw => (long)OldRuleWire(raw).Length), sizes.Values);

        // The row with a bare CR goes out as it always did, so RETR still sends what LIST says (Dovecot sends the CR as is).
        var retr = await edge.MultiLineAsync("RETR 1");
        Assert.Equal(Encoding.Latin1.GetString([.. OldRuleWire(old[0]), .. ".\r\n"u8]), Encoding.Latin1.GetString(retr));
        Assert.Equal(sizes[1], CountedOctets(retr, old[0]));
        var dovecotSizes = await dovecot.ListAsync();
        Assert.Equal(old[0].Length, dovecotSizes[1]);
        // Bare LFs alone, or neither: the old size is the new one, and the bytes are Dovecot's.
        var differences = new List<string>();
        for (var n = 2; n <= old.Length; n++)
            differences.AddRange(await CompareAsync(dovecot, n, dovecotSizes[n], edge, n, sizes[n], $"old row {n}", commands: HostileCommands));
        Assert.True(differences.Count == 0, string.Join("\n", differences));
    }
}
