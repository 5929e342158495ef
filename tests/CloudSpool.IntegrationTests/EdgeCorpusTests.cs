using System.Net;
using System.Security.Cryptography;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Pull;
using CloudSpool.Edge;
using CloudSpool.IntegrationTests.Fixtures;
using CloudSpool.Pop3;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The test corpus served byte for byte as Dovecot serves it: every file delivered into a real Dovecot maildir,
/// and into the spool both as stored (put directly) and as pulled from that Dovecot; then LIST, RETR, TOP n 0 and
/// TOP n 5 from both servers with the same raw client, which undoes nothing.
/// </summary>
public sealed class EdgeCorpusTests : DovecotAndSpoolTest
{
    private static readonly string[] Commands = ["RETR {0}", "TOP {0} 0", "TOP {0} 5"];

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
        RawPop3Client dovecot, int dovecotNumber, long dovecotSize, RawPop3Client edge, int edgeNumber, long edgeSize, string name, long sizeAllowance = 0)
    {
        var differences = new List<string>();
        if (dovecotSize + sizeAllowance != edgeSize)
            differences.Add($"{name}: LIST size {edgeSize}, Dovecot {dovecotSize}");
        foreach (var command in Commands)
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
        var files = CloudSpool.Testing.Corpus.Files();
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
        Assert.Equal((PullOutcome.Succeeded, 0), (run.Outcome, run.FailedMessages));
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
        var withoutFinalLineEnd = CloudSpool.Testing.Corpus.Files().Select(File.ReadAllBytes).Where(raw => raw[^1] != '\n').ToList();
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
}
