using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using CloudSpool.Core.Spool;

namespace CloudSpool.TestSupport.Soak;

/// <summary>What kind of mail a soak message is (figures are printed per kind).</summary>
public enum SoakMailKind
{
    Small,
    Large,
    Attachment,
    Bulk,
    FromSender,
    Corpus,
}

/// <summary>
/// One message the soak delivered upstream: the bytes dropped into the maildir, the bytes an upstream server serves
/// for them (every line ending in CRLF, a final CRLF: what the spool must hold), and whether forwarding must send it.
/// </summary>
public sealed record SoakMessage(string Id, string Mailbox, SoakMailKind Kind, byte[] Raw, string ExpectedSha256, bool ForwardEligible);

/// <summary>
/// Makes the soak's mail: each message carries <c>X-Soak-Id</c> and <c>X-Soak-Sha256</c> (the SHA-256 of what follows
/// the header block the soak wrote), so any copy of it, anywhere, can be checked on its own. Sizes are mixed, some
/// carry attachments, some are bulk (never forwarded by default), some come from the forward sender itself (never
/// forwarded), and some are the test corpus's odd real-world messages with the soak's headers put in front.
/// </summary>
public sealed partial class SoakMail
{
    /// <summary>The forward job's sending address (mail from it is never forwarded).</summary>
    public const string ForwardSender = "cloudspool@home.test";

    private readonly Random _random;
    private readonly Queue<string> _corpus;
    private readonly HashSet<string> _corpusDedupKeys = new(StringComparer.Ordinal);
    private readonly string _run;
    private int _next;

    public SoakMail(int seed, IEnumerable<string> corpusFiles)
    {
        _random = new Random(seed);
        _corpus = new Queue<string>(corpusFiles);
        _run = seed.ToString(CultureInfo.InvariantCulture) + "." + Guid.NewGuid().ToString("N")[..8];
    }

    /// <summary>The next message for <paramref name="mailbox"/>; <paramref name="withOdd"/> allows bulk, sender and corpus mail.</summary>
    public SoakMessage Next(string mailbox, bool withOdd, bool forwarded)
    {
        var id = "S" + Interlocked.Increment(ref _next).ToString("D6", CultureInfo.InvariantCulture);
        var roll = _random.Next(100);
        if (withOdd && roll < 12 && NextCorpus(id, mailbox) is { } corpus)
            return corpus;
        var kind = roll switch
        {
            < 55 => SoakMailKind.Small,
            < 70 => SoakMailKind.Large,
            < 85 => SoakMailKind.Attachment,
            < 93 when withOdd => SoakMailKind.Bulk,
            < 100 when withOdd => SoakMailKind.FromSender,
            _ => SoakMailKind.Small,
        };
        var body = kind switch
        {
            SoakMailKind.Large => TextBody(_random.Next(40_000, 400_000)),
            SoakMailKind.Attachment => AttachmentBody(_random.Next(20_000, kind == SoakMailKind.Attachment && _random.Next(10) == 0 ? 1_500_000 : 300_000)),
            _ => TextBody(_random.Next(200, 12_000)),
        };
        var from = kind == SoakMailKind.FromSender ? $"CloudSpool <{ForwardSender}>" : $"Sender {_random.Next(50)} <s{_random.Next(50)}@upstream.test>";
        var header = new StringBuilder()
            .Append("X-Soak-Id: ").Append(id).Append("\r\n")
            .Append("X-Soak-Sha256: ").Append(Hex(body.Body)).Append("\r\n")
            .Append("From: ").Append(from).Append("\r\n")
            .Append("To: ").Append(mailbox).Append("@home.test\r\n")
            .Append("Subject: soak ").Append(id).Append(' ').Append(kind.ToString().ToLowerInvariant()).Append("\r\n")
            .Append("Date: ").Append(DateTimeOffset.UtcNow.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)).Append("\r\n")
            .Append("Message-ID: <").Append(id).Append('.').Append(_run).Append("@soak.test>\r\n")
            .Append("MIME-Version: 1.0\r\n");
        if (kind == SoakMailKind.Bulk)
            header.Append("Precedence: bulk\r\nList-Id: <news.soak.test>\r\n");
        header.Append(body.ContentType).Append("\r\n\r\n");
        var raw = Concat(Encoding.ASCII.GetBytes(header.ToString()), body.Body);
        var eligible = forwarded && kind is SoakMailKind.Small or SoakMailKind.Large or SoakMailKind.Attachment;
        return new SoakMessage(id, mailbox, kind, raw, Hex(raw), eligible);
    }

    /// <summary>
    /// A corpus file with the soak's headers in front (and <c>X-Soak-Corpus</c>, which a forward rule skips: whether
    /// an odd message is forwardable is the forward tests' business). Each file is used once, and only when the spool
    /// would not take it for one already delivered (same Message-ID and body: by design the same message).
    /// </summary>
    private SoakMessage? NextCorpus(string id, string mailbox)
    {
        while (_corpus.TryDequeue(out var file))
        {
            var content = File.ReadAllBytes(file);
            var served = OnTheWire(content);
            var prefix = Encoding.ASCII.GetBytes($"X-Soak-Id: {id}\r\nX-Soak-Sha256: {Hex(served)}\r\nX-Soak-Corpus: {Path.GetFileName(file)}\r\n");
            var expected = Concat(prefix, served);
            var dedup = IngestedMessage.FromBytes(expected, "soak", id, DateTimeOffset.UtcNow).DedupKey;
            if (!_corpusDedupKeys.Add(dedup))
                continue;
            return new SoakMessage(id, mailbox, SoakMailKind.Corpus, Concat(prefix, content), Hex(expected), ForwardEligible: false);
        }
        return null;
    }

    private (string ContentType, byte[] Body) TextBody(int size)
    {
        var text = new StringBuilder(size + 100);
        while (text.Length < size)
            text.Append("line ").Append(text.Length.ToString(CultureInfo.InvariantCulture)).Append(" of soak text, ").Append(_random.Next()).Append("\r\n");
        return ("Content-Type: text/plain; charset=us-ascii", Encoding.ASCII.GetBytes(text.ToString()));
    }

    private (string ContentType, byte[] Body) AttachmentBody(int attachmentSize)
    {
        var data = new byte[attachmentSize];
        _random.NextBytes(data);
        var boundary = "soak-" + _random.Next().ToString(CultureInfo.InvariantCulture);
        var body = new StringBuilder()
            .Append("--").Append(boundary).Append("\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee the attachment\r\n")
            .Append("--").Append(boundary).Append("\r\nContent-Type: application/pdf; name=\"proof.pdf\"\r\n")
            .Append("Content-Disposition: attachment; filename=\"proof.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
            .Append(Convert.ToBase64String(data, Base64FormattingOptions.InsertLineBreaks)).Append("\r\n")
            .Append("--").Append(boundary).Append("--\r\n");
        return ($"Content-Type: multipart/mixed; boundary=\"{boundary}\"", Encoding.ASCII.GetBytes(body.ToString()));
    }

    /// <summary>
    /// The bytes as Dovecot serves a stored file over POP3 or IMAP (and as the edge serves a stored message): a bare LF
    /// becomes CRLF (a bare CR stays as it is), and a message without a final line end gets one.
    /// </summary>
    public static byte[] OnTheWire(byte[] stored)
    {
        var result = new List<byte>(stored.Length + 64);
        for (var i = 0; i < stored.Length; i++)
        {
            if (stored[i] == '\n' && (i == 0 || stored[i - 1] != '\r'))
                result.Add((byte)'\r');
            result.Add(stored[i]);
        }
        if (result.Count < 2 || result[^2] != '\r' || result[^1] != '\n')
            result.AddRange("\r\n"u8);
        return [.. result];
    }

    /// <summary>
    /// The soak id of a copy and whether its bytes match its own <c>X-Soak-Sha256</c> (over what follows the soak's
    /// header block: the corpus file after the soak's three lines, or the body of generated mail); null id when the
    /// copy is not soak mail.
    /// </summary>
    public static (string? Id, bool SelfConsistent) Inspect(byte[] copy)
    {
        var head = Encoding.Latin1.GetString(copy, 0, Math.Min(copy.Length, 8192));
        var id = IdHeader().Match(head);
        var sha = ShaHeader().Match(head);
        if (!id.Success || !sha.Success)
            return (null, false);
        int start;
        var corpus = CorpusHeader().Match(head);
        if (corpus.Success)
        {
            start = corpus.Index + corpus.Length;
        }
        else
        {
            var blank = head.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (blank < 0)
                return (id.Groups[1].Value, false);
            start = blank + 4;
        }
        var actual = Hex(copy.AsSpan(start));
        return (id.Groups[1].Value, string.Equals(actual, sha.Groups[1].Value, StringComparison.Ordinal));
    }

    public static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    private static byte[] Concat(byte[] a, byte[] b)
    {
        var result = new byte[a.Length + b.Length];
        a.CopyTo(result, 0);
        b.CopyTo(result, a.Length);
        return result;
    }

    [GeneratedRegex(@"^X-Soak-Id: (S\d+)\r\n", RegexOptions.Multiline)]
    private static partial Regex IdHeader();

    [GeneratedRegex(@"^X-Soak-Sha256: ([0-9a-f]{64})\r\n", RegexOptions.Multiline)]
    private static partial Regex ShaHeader();

    [GeneratedRegex(@"\AX-Soak-Id: [^\r]*\r\nX-Soak-Sha256: [^\r]*\r\nX-Soak-Corpus: [^\r]*\r\n")]
    private static partial Regex CorpusHeader();
}
