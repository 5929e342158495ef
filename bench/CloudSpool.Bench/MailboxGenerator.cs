using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace CloudSpool.Bench;

/// <summary>The kind of a generated message.</summary>
public enum MailKind
{
    /// <summary>text/plain, 2-20 KB.</summary>
    Text,

    /// <summary>multipart/alternative (text + HTML), 2-20 KB.</summary>
    Html,

    /// <summary>multipart/mixed with one base64 PDF or JPEG of 50 KB-2 MB (before encoding).</summary>
    Attachment,

    /// <summary>multipart/mixed with a base64 attachment, about 5 MB in all.</summary>
    Large,
}

/// <summary>
/// A deterministic mixed mailbox: the same seed gives the same bytes on every run (System.Random with a seed).
/// Mostly 2-20 KB text mails, a quarter of them HTML, about 10% with a base64 PDF/JPEG-like attachment
/// (50 KB-2 MB, log-uniform so small ones are more common) and about 1 in 700 of about 5 MB.
/// Lines end in LF, as in a maildir; the POP3 server sends them as CRLF.
/// </summary>
/// <param name="seed">the seed of System.Random</param>
/// <param name="firstIndex">the index of the first message (its date and Message-ID), for a mailbox made in seeded chunks</param>
/// <param name="binaryDivisor">attachments are this many times smaller than drawn (1: real size); the scale benchmark's
/// lean mode, whose messages keep their headers and mix but take less disk (see <see cref="NominalExtra"/>)</param>
/// <param name="fastBinary">attachment bytes from a xorshift generator seeded by System.Random (about 50 times faster than
/// its NextBytes, still incompressible and the same for a seed), for the scale benchmark, which makes a million messages;
/// false keeps the bytes the pull benchmark's figures were measured with</param>
public sealed class MailboxGenerator(int seed, int firstIndex = 0, int binaryDivisor = 1, bool fastBinary = false)
{
    private const double LargeShare = 0.0015;
    private const double AttachmentShare = 0.10;
    private const double HtmlShare = 0.25;

    private static readonly string[] Words =
    [
        "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not", "he",
        "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were", "there", "one",
        "all", "we", "can", "her", "has", "been", "if", "more", "when", "will", "would", "who", "so", "no", "invoice", "meeting",
        "project", "schedule", "report", "attached", "please", "review", "thanks", "regards", "tomorrow", "quarter", "budget",
        "delivery", "customer", "order", "shipping", "update", "release", "server", "backup", "password", "account", "team",
        "office", "agenda", "minutes", "draft", "contract", "proposal", "deadline", "feedback", "question", "answer", "issue",
        "ticket", "support", "holiday", "weekend", "lunch", "travel", "flight", "hotel", "booking", "payment", "receipt",
        "newsletter", "subscription", "offer", "discount", "photos", "family", "birthday", "party", "garden", "weather",
        "café", "naïve", "Zürich", "über", "straße", "año", "déjà", "résumé", "København", "Ålesund",
    ];

    private static readonly string[] FirstNames =
        ["Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Zoë"];

    private static readonly string[] LastNames =
        ["Smith", "Jones", "Müller", "García", "Rossi", "Novak", "Dubois", "Andersen", "Kowalski", "Tanaka", "Nguyen", "O'Brien", "Schmidt", "Silva"];

    private static readonly string[] Domains =
        ["example.com", "example.net", "example.org", "mail.example.de", "shop.example.co.uk", "news.example.fr"];

    private readonly Random _rng = new(seed);
    private readonly DateTimeOffset _start = new(2024, 3, 1, 8, 0, 0, TimeSpan.Zero);
    private int _index = firstIndex;

    /// <summary>
    /// The bytes the last message would have had more at real attachment size, as served (CRLF); 0 unless
    /// <c>binaryDivisor</c> is above 1. Its length as served plus this is the size it stands for.
    /// </summary>
    public long NominalExtra { get; private set; }

    /// <summary>Makes the next message.</summary>
    public (byte[] Bytes, MailKind Kind) Next()
    {
        var i = _index++;
        var roll = _rng.NextDouble();
        var kind = roll < LargeShare ? MailKind.Large
            : roll < LargeShare + AttachmentShare ? MailKind.Attachment
            : _rng.NextDouble() < HtmlShare ? MailKind.Html
            : MailKind.Text;

        var date = _start.AddSeconds(i * 97 + _rng.Next(60));
        var from = Person();
        var to = "Bench User <bench@cloudspool.example>";
        var subject = Subject();
        var messageId = $"<{date.ToUnixTimeSeconds()}.{i}.{_rng.Next():x8}@{from.Domain}>";
        var boundary = $"=_bench_{i}_{_rng.Next():x8}";

        NominalExtra = 0;
        var w = new Writer();
        Headers(w, date, from.Display, from.Address, from.Domain, to, subject, messageId, i);
        switch (kind)
        {
            case MailKind.Text:
            {
                var (body, qp) = TextBody(LogUniform(2 * 1024, 20 * 1024) - w.Length);
                w.Line("MIME-Version: 1.0");
                w.Line("Content-Type: text/plain; charset=utf-8; format=flowed");
                w.Line(qp ? "Content-Transfer-Encoding: quoted-printable" : "Content-Transfer-Encoding: 8bit");
                w.Line();
                w.Raw(body);
                break;
            }
            case MailKind.Html:
            {
                var total = LogUniform(2 * 1024, 20 * 1024) - w.Length;
                w.Line("MIME-Version: 1.0");
                w.Line($"Content-Type: multipart/alternative; boundary=\"{boundary}\"");
                w.Line();
                w.Line("This is a multi-part message in MIME format.");
                w.Line();
                AlternativeParts(w, boundary, total);
                break;
            }
            default:
            {
                var binarySize = kind == MailKind.Large
                    ? _rng.Next(3_500_000, 4_000_000) // about 4.7-5.4 MB once base64-encoded
                    : LogUniform(50 * 1024, 2 * 1024 * 1024);
                if (binaryDivisor > 1)
                {
                    var lean = Math.Max(1024, binarySize / binaryDivisor);
                    NominalExtra = Base64ServedLength(binarySize) - Base64ServedLength(lean);
                    binarySize = lean;
                }

                var pdf = _rng.NextDouble() < 0.6;
                var inner = $"=_bench_alt_{i}_{_rng.Next():x8}";
                w.Line("MIME-Version: 1.0");
                w.Line($"Content-Type: multipart/mixed; boundary=\"{boundary}\"");
                w.Line();
                w.Line("This is a multi-part message in MIME format.");
                w.Line();
                w.Line($"--{boundary}");
                if (_rng.NextDouble() < 0.5)
                {
                    w.Line($"Content-Type: multipart/alternative; boundary=\"{inner}\"");
                    w.Line();
                    AlternativeParts(w, inner, _rng.Next(1500, 6000));
                }
                else
                {
                    var (body, qp) = TextBody(_rng.Next(800, 4000));
                    w.Line("Content-Type: text/plain; charset=utf-8");
                    w.Line(qp ? "Content-Transfer-Encoding: quoted-printable" : "Content-Transfer-Encoding: 8bit");
                    w.Line();
                    w.Raw(body);
                }

                var name = pdf ? $"{Pick(Words)}-{Pick(Words)}-{date:yyyyMMdd}.pdf" : $"IMG_{_rng.Next(1000, 9999)}.jpg";
                w.Line($"--{boundary}");
                w.Line(pdf ? $"Content-Type: application/pdf; name=\"{name}\"" : $"Content-Type: image/jpeg; name=\"{name}\"");
                w.Line($"Content-Disposition: attachment; filename=\"{name}\"");
                w.Line("Content-Transfer-Encoding: base64");
                w.Line();
                w.Raw(Base64Lines(BinaryContent(binarySize, pdf)));
                w.Line($"--{boundary}--");
                break;
            }
        }

        return (w.ToArray(), kind);
    }

    private void Headers(Writer w, DateTimeOffset date, string fromDisplay, string fromAddress, string fromDomain, string to, string subject, string messageId, int i)
    {
        var hops = _rng.Next(1, 4);
        w.Line($"Return-Path: <{fromAddress}>");
        w.Line($"Delivered-To: bench@cloudspool.example");
        for (var h = 0; h < hops; h++)
        {
            var at = date.AddSeconds(hops - h);
            w.Line($"Received: from mx{_rng.Next(1, 9)}.{fromDomain} (mx{_rng.Next(1, 9)}.{fromDomain} [192.0.2.{_rng.Next(1, 254)}])");
            w.Line($"\tby mail.cloudspool.example (Postfix) with ESMTPS id {_rng.NextInt64():X16}");
            w.Line($"\tfor <bench@cloudspool.example>; {Rfc5322(at)}");
        }

        if (_rng.NextDouble() < 0.7)
        {
            var signature = new byte[_rng.Next(128, 256)];
            _rng.NextBytes(signature);
            w.Line($"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={fromDomain}; s=sel{_rng.Next(1, 4)};");
            w.Line($"\tt={date.ToUnixTimeSeconds()}; bh={Convert.ToBase64String(signature, 0, 32)};");
            w.Line("\th=From:To:Subject:Date:Message-ID:MIME-Version:Content-Type;");
            var b = Convert.ToBase64String(signature);
            for (var p = 0; p < b.Length; p += 70)
            {
                w.Line((p == 0 ? "\tb=" : "\t ") + b.Substring(p, Math.Min(70, b.Length - p)));
            }
        }

        w.Line($"Date: {Rfc5322(date)}");
        w.Line($"From: {fromDisplay} <{fromAddress}>");
        w.Line($"To: {to}");
        if (_rng.NextDouble() < 0.3)
        {
            var cc = Person();
            w.Line($"Cc: {cc.Display} <{cc.Address}>");
        }

        w.Line($"Subject: {subject}");
        w.Line($"Message-ID: {messageId}");
        if (i > 0 && _rng.NextDouble() < 0.3)
        {
            w.Line($"In-Reply-To: <{date.ToUnixTimeSeconds() - 3600}.{_rng.Next(i)}.reply@{fromDomain}>");
        }

        w.Line($"X-Mailer: {Pick(["Thunderbird 115.8", "Outlook 16.0", "Apple Mail (2.3774)", "Roundcube 1.6", "K-9 Mail 6.8"])}");
    }

    private void AlternativeParts(Writer w, string boundary, int total)
    {
        var (text, textQp) = TextBody(Math.Max(400, total / 3));
        w.Line($"--{boundary}");
        w.Line("Content-Type: text/plain; charset=utf-8");
        w.Line(textQp ? "Content-Transfer-Encoding: quoted-printable" : "Content-Transfer-Encoding: 8bit");
        w.Line();
        w.Raw(text);
        w.Line($"--{boundary}");
        w.Line("Content-Type: text/html; charset=utf-8");
        w.Line("Content-Transfer-Encoding: 8bit");
        w.Line();
        w.Raw(HtmlBody(Math.Max(600, total - text.Length)));
        w.Line($"--{boundary}--");
    }

    /// <summary>Wrapped paragraphs of about <paramref name="size"/> bytes; some quoted-printable encoded.</summary>
    private (byte[] Body, bool QuotedPrintable) TextBody(int size)
    {
        size = Math.Max(size, 300);
        var qp = _rng.NextDouble() < 0.2;
        var sb = new StringBuilder(size + 200);
        var line = new StringBuilder(80);
        var bytes = 0;
        var sentenceStart = true;
        while (bytes < size)
        {
            var word = Pick(Words);
            if (sentenceStart)
            {
                word = char.ToUpperInvariant(word[0]) + word[1..];
                sentenceStart = false;
            }

            var end = _rng.Next(12) == 0;
            if (end)
            {
                word += ".";
                sentenceStart = true;
            }

            if (line.Length + word.Length + 1 > 72)
            {
                sb.Append(line).Append('\n');
                bytes += Encoding.UTF8.GetByteCount(line.ToString()) + 1;
                line.Clear();
                if (end && _rng.Next(4) == 0)
                {
                    sb.Append('\n'); // paragraph break
                    bytes++;
                }
            }

            if (line.Length > 0)
            {
                line.Append(' ');
            }

            line.Append(word);
        }

        if (line.Length > 0)
        {
            sb.Append(line).Append('\n');
        }

        sb.Append("\n-- \n").Append(Pick(FirstNames)).Append('\n');
        var text = sb.ToString();
        return (qp ? QuotedPrintable(text) : Encoding.UTF8.GetBytes(text), qp);
    }

    private byte[] HtmlBody(int size)
    {
        var sb = new StringBuilder(size + 400);
        sb.Append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><style>p{font-family:Arial,sans-serif;font-size:14px}</style></head>\n<body>\n");
        while (sb.Length < size)
        {
            sb.Append("<p>");
            var words = _rng.Next(20, 80);
            for (var k = 0; k < words; k++)
            {
                var word = Pick(Words);
                if (_rng.Next(25) == 0)
                {
                    sb.Append("<b>").Append(word).Append("</b> ");
                }
                else if (_rng.Next(40) == 0)
                {
                    sb.Append("<a href=\"https://www.").Append(Pick(Domains)).Append('/').Append(word).Append("\">").Append(word).Append("</a> ");
                }
                else
                {
                    sb.Append(word).Append(' ');
                }

                if (k % 12 == 11)
                {
                    sb.Append('\n');
                }
            }

            sb.Append("</p>\n");
        }

        sb.Append("</body></html>\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Incompressible bytes with a PDF or JPEG header and trailer (like real compressed content).</summary>
    private byte[] BinaryContent(int size, bool pdf)
    {
        var bytes = new byte[size];
        if (fastBinary)
        {
            // xorshift64*, 8 bytes a step.
            var state = (ulong)_rng.NextInt64() | 1;
            var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes.AsSpan());
            for (var k = 0; k < words.Length; k++)
            {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                words[k] = state * 0x2545F4914F6CDD1DUL;
            }

            _rng.NextBytes(bytes.AsSpan(words.Length * 8));
        }
        else
        {
            _rng.NextBytes(bytes);
        }

        var head = pdf
            ? "%PDF-1.7\n%\u00e2\u00e3\u00cf\u00d3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"u8.ToArray()
            : [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, (byte)'J', (byte)'F', (byte)'I', (byte)'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x48, 0x00, 0x48, 0x00, 0x00];
        var tail = pdf ? "\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"u8.ToArray() : [0xFF, 0xD9];
        head.CopyTo(bytes, 0);
        tail.CopyTo(bytes, size - tail.Length);
        return bytes;
    }

    /// <summary>The length of <see cref="Base64Lines"/> of <paramref name="size"/> bytes as served (CRLF line ends).</summary>
    private static long Base64ServedLength(int size) => size / 57 * 78L + (size % 57 == 0 ? 0 : (size % 57 + 2) / 3 * 4 + 2);

    /// <summary>Base64 in 76-character lines, each ending in LF.</summary>
    private static byte[] Base64Lines(byte[] data)
    {
        const int chunk = 57; // 57 bytes -> 76 characters
        var lines = (data.Length + chunk - 1) / chunk;
        var output = new byte[lines * 77];
        var written = 0;
        for (var offset = 0; offset < data.Length; offset += chunk)
        {
            var n = Math.Min(chunk, data.Length - offset);
            Base64.EncodeToUtf8(data.AsSpan(offset, n), output.AsSpan(written), out _, out var w);
            written += w;
            output[written++] = (byte)'\n';
        }

        return output.AsSpan(0, written).ToArray();
    }

    private static byte[] QuotedPrintable(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        var output = new List<byte>(bytes.Length + bytes.Length / 10);
        var column = 0;
        foreach (var b in bytes)
        {
            if (b == (byte)'\n')
            {
                output.Add(b);
                column = 0;
                continue;
            }

            var encoded = b > 126 || b == (byte)'=';
            var width = encoded ? 3 : 1;
            if (column + width > 75)
            {
                output.Add((byte)'=');
                output.Add((byte)'\n');
                column = 0;
            }

            if (encoded)
            {
                output.Add((byte)'=');
                output.Add((byte)"0123456789ABCDEF"[b >> 4]);
                output.Add((byte)"0123456789ABCDEF"[b & 15]);
            }
            else
            {
                output.Add(b);
            }

            column += width;
        }

        return [.. output];
    }

    private string Subject()
    {
        var words = Enumerable.Range(0, _rng.Next(2, 9)).Select(_ => Pick(Words)).ToList();
        var subject = string.Join(' ', words);
        subject = char.ToUpperInvariant(subject[0]) + subject[1..];
        if (_rng.NextDouble() < 0.2)
        {
            subject = "Re: " + subject;
        }

        // Non-ASCII subjects travel as RFC 2047 encoded-words.
        return subject.Any(c => c > 127) ? $"=?UTF-8?B?{Convert.ToBase64String(Encoding.UTF8.GetBytes(subject))}?=" : subject;
    }

    private (string Display, string Address, string Domain) Person()
    {
        var first = Pick(FirstNames);
        var last = Pick(LastNames);
        var domain = Pick(Domains);
        var local = $"{first}.{last}".ToLowerInvariant().Replace("'", "", StringComparison.Ordinal);
        local = new string(local.Where(c => c < 128).ToArray());
        var display = $"{first} {last}";
        display = display.Any(c => c > 127) ? $"=?UTF-8?Q?{Uri.EscapeDataString(display).Replace('%', '=')}?=" : $"\"{display}\"";
        return (display, $"{local}@{domain}", domain);
    }

    private int LogUniform(int min, int max) => (int)Math.Exp(Math.Log(min) + _rng.NextDouble() * (Math.Log(max) - Math.Log(min)));

    private string Pick(string[] values) => values[_rng.Next(values.Length)];

    private static string Rfc5322(DateTimeOffset t) => t.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture);

    private sealed class Writer
    {
        private readonly MemoryStream _stream = new();

        public int Length => (int)_stream.Length;

        public void Line(string text = "")
        {
            _stream.Write(Encoding.UTF8.GetBytes(text));
            _stream.WriteByte((byte)'\n');
        }

        public void Raw(byte[] bytes) => _stream.Write(bytes);

        public byte[] ToArray() => _stream.ToArray();
    }
}
