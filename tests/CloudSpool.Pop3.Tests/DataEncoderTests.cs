using CloudSpool.Pop3.Protocol;
using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>The RETR/TOP data writer's byte rules, checked against the slow reference in <see cref="Wire"/>.</summary>
public sealed class DataEncoderTests
{
    private static (byte[] Data, long Octets) Encode(byte[] stored, Func<Pop3DataEncoder> create, int chunk)
    {
        var encoder = create();
        var output = new List<byte>();
        for (var offset = 0; offset < stored.Length && !encoder.IsComplete;)
        {
            var slice = stored.AsSpan(offset, Math.Min(chunk, stored.Length - offset));
            var buffer = new byte[Pop3DataEncoder.MaxEncodedSize(slice.Length)];
            var written = encoder.Encode(slice, buffer, out var consumed);
            Assert.True(consumed == slice.Length || encoder.IsComplete, "only a complete TOP leaves input unconsumed");
            output.AddRange(buffer[..written]);
            offset += consumed;
        }
        var end = new byte[Pop3DataEncoder.FinishSize];
        output.AddRange(end[..encoder.Finish(end)]);
        return ([.. output], encoder.MessageOctets);
    }

    [Theory]
    [InlineData("", ".\r\n", 0)]
    [InlineData("a", "a\r\n.\r\n", 1)]
    [InlineData(".", "..\r\n.\r\n", 1)]
    [InlineData(".\r\n", "..\r\n.\r\n", 3)]
    [InlineData("a\r\n", "a\r\n.\r\n", 3)]
    [InlineData("a\n", "a\r\n.\r\n", 3)]
    [InlineData("a\r", "a\r\r\n.\r\n", 2)]
    [InlineData("\r", "\r\r\n.\r\n", 1)]
    [InlineData("\n", "\r\n.\r\n", 2)]
    [InlineData("\r\r\n", "\r\r\n.\r\n", 3)]
    [InlineData("\n\r", "\r\n\r\r\n.\r\n", 3)]
    [InlineData("x\r.y\r\n\r.\r\n", "x\r.y\r\n\r.\r\n.\r\n", 10)]
    [InlineData("a\n.\n..\n", "a\r\n..\r\n...\r\n.\r\n", 10)]
    [InlineData("x.y\r\n .z", "x.y\r\n .z\r\n.\r\n", 8)]
    [InlineData("a\nb\rc\r\n.d\n..e\r\r\nf\0\xff", "a\r\nb\rc\r\n..d\r\n...e\r\r\nf\0\xff\r\n.\r\n", 21)]
    public void Retr_data_sends_bare_cr_as_stored_turns_bare_lf_into_crlf_stuffs_dots_and_counts_the_pop3_size(string stored, string wire, long octets)
    {
        AssertRetrData(stored, wire, octets, bareCrAsCrlf: false);
        Assert.Equal(octets, Wire.Pop3Size(Wire.Bytes(stored)));
    }

    private static void AssertRetrData(string stored, string wire, long octets, bool bareCrAsCrlf)
    {
        var bytes = Wire.Bytes(stored);
        foreach (var chunk in new[] { 1, 2, 3, 1000 })
        {
            var (data, counted) = Encode(bytes, () => new Pop3DataEncoder(bareCrAsCrlf), chunk);
            Assert.Equal(wire, Wire.Text(data));
            Assert.Equal(octets, counted);
        }
    }

    /// <summary>Rows written before size rule 2 counted a bare CR as CRLF: for them the encoder keeps sending it so.</summary>
    [Theory]
    [InlineData("a\r", "a\r\n.\r\n", 3)]
    [InlineData("\r", "\r\n.\r\n", 2)]
    [InlineData("\r\r\n", "\r\n\r\n.\r\n", 4)]
    [InlineData("\n\r", "\r\n\r\n.\r\n", 4)]
    [InlineData("x\r.y", "x\r\n..y\r\n.\r\n", 5)]
    [InlineData("a\nb\rc\r\n.d\n..e\r\r\nf\0\xff", "a\r\nb\r\nc\r\n..d\r\n...e\r\n\r\nf\0\xff\r\n.\r\n", 23)]
    public void Retr_data_of_an_old_rule_row_sends_bare_cr_as_crlf_and_counts_it_so(string stored, string wire, long octets) =>
        AssertRetrData(stored, wire, octets, bareCrAsCrlf: true);

    [Fact]
    public void Retr_data_matches_the_reference_and_ingest_size_for_random_bytes_in_every_chunking()
    {
        var random = new Random(1939);
        byte[] alphabet = [(byte)'\r', (byte)'\n', (byte)'.', (byte)'a', 0, 0xFF, (byte)' '];
        for (var round = 0; round < 500; round++)
        {
            var stored = new byte[random.Next(0, 80)];
            for (var i = 0; i < stored.Length; i++)
                stored[i] = alphabet[random.Next(alphabet.Length)];
            var chunk = random.Next(1, 9);
            var (data, octets) = Encode(stored, () => new Pop3DataEncoder(), chunk);
            Assert.Equal(Wire.Text(Wire.RetrData(stored)), Wire.Text(data));
            Assert.Equal(Wire.Pop3Size(stored), octets);
            Assert.Equal(Wire.NormalizeCrlf(stored).Length, octets);
            // The old rule, as old rows are still served.
            var (old, oldOctets) = Encode(stored, () => new Pop3DataEncoder(bareCrAsCrlf: true), chunk);
            Assert.Equal(Wire.Text(Wire.RetrData(stored, bareCrAsCrlf: true)), Wire.Text(old));
            Assert.Equal(Wire.NormalizeCrlf(stored, bareCrAsCrlf: true).Length, oldOctets);
            var lines = random.Next(0, 4);
            Assert.Equal(Wire.Text(Wire.TopData(stored, lines)), Wire.Text(Encode(stored, () => new Pop3DataEncoder(lines), chunk).Data));
            Assert.Equal(Wire.Text(Wire.TopData(stored, lines, bareCrAsCrlf: true)),
                Wire.Text(Encode(stored, () => new Pop3DataEncoder(lines, bareCrAsCrlf: true), chunk).Data));
        }
    }

    [Fact]
    public void Retr_data_of_every_corpus_message_matches_the_reference_and_ingest_size()
    {
        foreach (var path in TestCorpus.Messages())
        {
            var stored = File.ReadAllBytes(path);
            foreach (var chunk in new[] { 1, 7, 4096, 64 * 1024 })
            {
                var (data, octets) = Encode(stored, () => new Pop3DataEncoder(), chunk);
                Assert.True(Wire.RetrData(stored).AsSpan().SequenceEqual(data), Path.GetFileName(path) + " chunk " + chunk);
                Assert.Equal(Wire.Pop3Size(stored), octets);
                // Undone by a client, the data is the stored message with CRLF line ends (plus one if none at the end).
                Assert.True(Wire.AsReceived(stored).AsSpan().SequenceEqual(Wire.Unstuff(data)), Path.GetFileName(path));
            }
        }
    }

    [Theory]
    [InlineData("H: 1\r\nI: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n", 0, "H: 1\r\nI: 2\r\n\r\n.\r\n")]
    [InlineData("H: 1\r\nI: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n", 2, "H: 1\r\nI: 2\r\n\r\nl1\r\n..l2\r\n.\r\n")]
    [InlineData("H: 1\r\nI: 2\r\n\r\nl1\r\n.l2\r\nl3\r\n", 9, "H: 1\r\nI: 2\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n")]
    [InlineData("H: 1\nI: 2\n\nl1\nl2", 1, "H: 1\r\nI: 2\r\n\r\nl1\r\n.\r\n")]
    [InlineData("H: 1\nI: 2\n\nl1\nl2", 2, "H: 1\r\nI: 2\r\n\r\nl1\r\nl2\r\n.\r\n")]
    [InlineData("H: 1\rI: 2\r\rl1\rl2\r", 1, "H: 1\rI: 2\r\rl1\rl2\r\r\n.\r\n")]
    [InlineData("H: 1\rI: 2\r\n\r\nl1\rl2\r\nl3\r\n", 1, "H: 1\rI: 2\r\n\r\nl1\rl2\r\n.\r\n")]
    [InlineData("H: 1\r\n\r\r\nl1\r\nl2\r\n", 0, "H: 1\r\n\r\r\n.\r\n")]
    [InlineData("H: 1\r\n\r \r\nl1\r\nl2\r\n", 1, "H: 1\r\n\r \r\nl1\r\n.\r\n")]
    [InlineData("\rl0\r\nl1\r\n\r\nl3\r\n", 1, "\rl0\r\nl1\r\n.\r\n")]
    [InlineData("H: 1\r\r\nl1\r\n", 0, "H: 1\r\r\nl1\r\n.\r\n")]
    [InlineData("H: 1\r\n\r", 0, "H: 1\r\n\r\r\n.\r\n")]
    [InlineData("H: only header, no body", 5, "H: only header, no body\r\n.\r\n")]
    [InlineData("\r\nbody first", 0, "\r\n.\r\n")]
    [InlineData("", 3, ".\r\n")]
    public void Top_sends_header_the_line_that_ends_it_and_the_first_n_body_lines(string stored, int lines, string wire)
    {
        var bytes = Wire.Bytes(stored);
        foreach (var chunk in new[] { 1, 2, 5, 1000 })
        {
            var (data, _) = Encode(bytes, () => new Pop3DataEncoder(lines), chunk);
            Assert.Equal(wire, Wire.Text(data));
            Assert.Equal(Wire.Text(Wire.TopData(bytes, lines)), Wire.Text(data));
        }
    }

    [Fact]
    public void Top_of_every_corpus_message_matches_the_reference()
    {
        foreach (var path in TestCorpus.Messages())
        {
            var stored = File.ReadAllBytes(path);
            foreach (var lines in new[] { 0, 1, 5, 100000 })
            {
                var (data, _) = Encode(stored, () => new Pop3DataEncoder(lines), 4096);
                Assert.True(Wire.TopData(stored, lines).AsSpan().SequenceEqual(data), Path.GetFileName(path) + " TOP " + lines);
            }
        }
    }
}
