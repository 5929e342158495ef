using System.Security.Cryptography;
using System.Text;
using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Tests;

public sealed class IngestMeterTests
{
    private static IngestFigures Meter(byte[] bytes, int chunk = int.MaxValue)
    {
        using var meter = new IngestMeter();
        for (var i = 0; i < bytes.Length; i += chunk)
            meter.Append(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)));
        return meter.Complete();
    }

    /// <summary>
    /// Reference: the size of the bytes as RETR sends them (Dovecot 2.3's rule): each byte one octet, and a LF that does
    /// not follow a CR one more (it goes out as CRLF). A bare CR goes out as stored.
    /// </summary>
    private static long ReferencePop3Size(byte[] bytes)
    {
        long size = 0;
        for (var i = 0; i < bytes.Length; i++)
            size += bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r') ? 2 : 1;
        return size;
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("a", 1)]
    [InlineData("a\r\n", 3)]
    [InlineData("a\n", 3)]
    [InlineData("a\r", 2)]
    [InlineData("\r", 1)]
    [InlineData("\r\r", 2)]
    [InlineData("a\r\r\n", 4)]
    [InlineData("\n\n", 4)]
    [InlineData("\n\r", 3)]
    [InlineData("a\rb", 3)]
    [InlineData("\r\n.\r\n", 5)]
    public void Pop3_size_counts_a_bare_lf_as_crlf_and_a_bare_cr_as_one_octet(string text, long expected)
    {
        Assert.Equal(expected, Meter(Encoding.Latin1.GetBytes(text)).Pop3Size);
    }

    [Theory]
    [MemberData(nameof(TestCorpus.MessageNames), MemberType = typeof(TestCorpus))]
    public void Corpus_figures_match_the_reference_whatever_the_chunking(string name)
    {
        var bytes = File.ReadAllBytes(Path.Combine(TestCorpus.Directory, name));
        var whole = Meter(bytes);
        Assert.Equal(bytes.Length, whole.RawLength);
        Assert.Equal(ReferencePop3Size(bytes), whole.Pop3Size);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), whole.Sha256);
        // A chunk boundary between CR and LF, or inside the header/body separator, changes nothing.
        foreach (var chunk in new[] { 1, 2, 3, 7, 4096 })
            Assert.Equal(whole, Meter(bytes, chunk));
    }

    [Theory]
    [InlineData("Subject: a\r\n\r\nbody\r\n", "body\r\n")]
    [InlineData("Subject: a\n\nbody\n", "body\n")]
    [InlineData("Subject: a\r\n\r\n", "")]
    [InlineData("Subject: a\r\n", "")]
    [InlineData("\r\nbody", "body")]
    public void Body_hash_covers_the_bytes_after_the_first_empty_line(string message, string body)
    {
        var figures = Meter(Encoding.ASCII.GetBytes(message));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.ASCII.GetBytes(body))), figures.BodySha256);
    }

    /// <summary>Reference: the bytes after the first empty line (LF, or CR LF, with only CRs before it), or none.</summary>
    private static byte[] ReferenceBody(byte[] bytes)
    {
        var lineEmpty = true;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\n')
            {
                if (lineEmpty)
                    return bytes[(i + 1)..];
                lineEmpty = true;
            }
            else if (bytes[i] != '\r')
            {
                lineEmpty = false;
            }
        }
        return [];
    }

    [Fact]
    public void Random_bytes_full_of_line_ends_match_the_reference_whatever_the_chunking()
    {
        var random = new Random(1129);
        var alphabet = "\r\n\r\n\r\nab.-: \t"u8.ToArray();
        for (var round = 0; round < 2000; round++)
        {
            var bytes = new byte[random.Next(0, 300)];
            for (var i = 0; i < bytes.Length; i++)
                bytes[i] = alphabet[random.Next(alphabet.Length)];
            var figures = Meter(bytes, random.Next(1, 50));
            Assert.Equal(ReferencePop3Size(bytes), figures.Pop3Size);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(ReferenceBody(bytes))), figures.BodySha256);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), figures.Sha256);
        }
    }

    [Fact]
    public void Same_message_with_other_trace_headers_has_the_same_dedup_key()
    {
        var a = Meter(Encoding.ASCII.GetBytes("Received: from a\r\nMessage-ID: <x@y>\r\n\r\nHello\r\n"));
        var b = Meter(Encoding.ASCII.GetBytes("Received: from b\r\nDelivered-To: me\r\nMessage-ID: <x@y>\r\n\r\nHello\r\n"));
        var c = Meter(Encoding.ASCII.GetBytes("Received: from b\r\nMessage-ID: <x@y>\r\n\r\nHello again\r\n"));
        Assert.Equal(DedupKey.For("x@y", a), DedupKey.For("x@y", b));
        Assert.NotEqual(DedupKey.For("x@y", a), DedupKey.For("x@y", c));
        // Without a Message-ID only identical bytes are the same message.
        Assert.NotEqual(DedupKey.For(null, a), DedupKey.For(null, b));
        Assert.Equal(DedupKey.For(null, a), DedupKey.For(" ", a));
    }
}
