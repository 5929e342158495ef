using System.Globalization;
using System.Text;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Ingest;
using MimeKit;
using MimeKit.Text;

namespace CloudSpool.Core.Tests.Forward;

public sealed class ForwardTrimmerTests
{
    private static readonly DateTimeOffset Sent = new(2026, 11, 3, 10, 0, 0, TimeSpan.FromHours(9));

    static ForwardTrimmerTests() => _ = MessageSummarizer.Options; // registers the code-pages encodings

    private static ForwardAddressing Addressing(string key = "m:0638123-abcdef01") => new(
        new MailboxAddress("CloudSpool", "cloudspool@home.example"),
        new MailboxAddress("", "phone@carrier.example"),
        "fwd.abc@cloudspool", key, Sent.AddMinutes(5));

    private static TrimLimits Limit(long bytes, params string[] keep) => new(bytes, keep);

    private static byte[] Bytes(MimeMessage message)
    {
        using var stream = new MemoryStream();
        message.WriteTo(ForwardTrimmer.WireFormat, stream);
        return stream.ToArray();
    }

    private static TrimmedMessage Trim(MimeMessage original, TrimLimits limits) =>
        ForwardTrimmer.Trim(ForwardSource.Load(new MemoryStream(Bytes(original))), limits, Addressing());

    /// <summary>What the phone receives: the copy written to bytes and parsed again.</summary>
    private static MimeMessage Received(TrimmedMessage result)
    {
        Assert.Null(result.SkipReason);
        var bytes = Bytes(result.Message!);
        Assert.Equal(result.Size, bytes.Length);
        return MimeMessage.Load(new MemoryStream(bytes));
    }

    private static MimeMessage Mail(string subject, MimeEntity body, string from = "\"山田 太郎\" <yamada@example.jp>")
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        message.To.Add(MailboxAddress.Parse("alice@home.example"));
        message.Subject = subject;
        message.Date = Sent;
        message.MessageId = "orig.1@example.jp";
        message.Body = body;
        return message;
    }

    private static TextPart Text(string text, string charset = "utf-8", string subtype = "plain")
    {
        var part = new TextPart(subtype);
        part.SetText(Encoding.GetEncoding(charset), text);
        part.ContentTransferEncoding = charset == "iso-2022-jp" ? ContentEncoding.SevenBit : ContentEncoding.Base64;
        return part;
    }

    private static MimePart Attachment(string name, string type, int size)
    {
        var data = new byte[size];
        new Random(size).NextBytes(data);
        return new MimePart(type)
        {
            ContentDisposition = new ContentDisposition(ContentDisposition.Attachment),
            FileName = name,
            Content = new MimeContent(new MemoryStream(data)),
            ContentTransferEncoding = ContentEncoding.Base64,
        };
    }

    private const string Japanese = "お世話になっております。山田です。\n明日の打ち合わせは午後三時からでお願いします。資料は添付のとおりです。\n";

    [Theory]
    [InlineData("iso-2022-jp")]
    [InlineData("shift_jis")]
    [InlineData("utf-8")]
    public void Japanese_mail_arrives_readable_with_subject_date_and_sender(string charset)
    {
        var original = Mail("打ち合わせの件", Text(Japanese, charset));
        var copy = Received(Trim(original, Limit(100 * 1024)));

        Assert.Equal("打ち合わせの件", copy.Subject);
        Assert.Equal(Sent, copy.Date);
        Assert.Equal("山田 太郎" + ForwardTrimmer.ViaSuffix, copy.From.Mailboxes.Single().Name);
        Assert.Equal("cloudspool@home.example", copy.From.Mailboxes.Single().Address);
        Assert.Equal("yamada@example.jp", copy.ReplyTo.Mailboxes.Single().Address);
        Assert.Equal("phone@carrier.example", copy.To.Mailboxes.Single().Address);
        Assert.Equal("m:0638123-abcdef01", copy.Headers[ForwardTrimmer.LoopHeader]);
        Assert.Equal("fwd.abc@cloudspool", copy.MessageId);
        Assert.Contains(Japanese.Trim(), copy.TextBody!.Replace("\r\n", "\n", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("From: \"山田 太郎\" <yamada@example.jp>", copy.TextBody!, StringComparison.Ordinal);
        Assert.Equal("utf-8", Assert.IsType<TextPart>(copy.Body).ContentType.Charset, ignoreCase: true);
    }

    [Theory]
    [InlineData("iso-2022-jp")]
    [InlineData("shift_jis")]
    [InlineData("utf-8")]
    public void Long_japanese_text_is_cut_at_a_character_boundary_with_a_note_and_fits(string charset)
    {
        var text = string.Concat(Enumerable.Repeat(Japanese, 400)); // about 30,000 characters
        var result = Trim(Mail("長いメール", Text(text, charset)), Limit(8 * 1024));
        var copy = Received(result);

        Assert.True(result.Truncated);
        Assert.True(result.Size <= 8 * 1024, $"{result.Size} bytes");
        var body = copy.TextBody!.Replace("\r\n", "\n", StringComparison.Ordinal);
        Assert.DoesNotContain('\uFFFD', body);
        Assert.Contains("[… cut here to fit the phone's limit of 8 KB", body, StringComparison.Ordinal);
        var shown = body[(body.IndexOf("\n\n", StringComparison.Ordinal) + 2)..body.IndexOf("\n\n[… cut", StringComparison.Ordinal)];
        Assert.True(shown.Length > 1000, $"only {shown.Length} characters shown");
        Assert.StartsWith(shown, text, StringComparison.Ordinal);
    }

    [Fact]
    public void Cut_never_splits_a_grapheme_cluster()
    {
        const string family = "👨‍👩‍👧‍👦"; // one grapheme, 11 UTF-16 units, 25 UTF-8 bytes
        const string accented = "e\u0301";
        var text = string.Concat(Enumerable.Repeat(family + accented + "x", 2000));
        for (var limit = 3000; limit < 3100; limit += 7)
        {
            var result = Trim(Mail("emoji", Text(text)), Limit(limit));
            var body = Received(result).TextBody!.Replace("\r\n", "\n", StringComparison.Ordinal);
            var shown = body[(body.IndexOf("\n\n", StringComparison.Ordinal) + 2)..body.IndexOf("\n\n[… cut", StringComparison.Ordinal)];
            Assert.StartsWith(shown, text, StringComparison.Ordinal);
            var elements = StringInfo.ParseCombiningCharacters(text);
            Assert.Contains(shown.Length, elements.Append(text.Length));
        }
    }

    [Fact]
    public void Prefix_within_utf8_bytes_stops_before_a_multibyte_character()
    {
        Assert.Equal("ab", ForwardTrimmer.PrefixWithinUtf8Bytes("abあ", 4)); // あ is 3 bytes
        Assert.Equal("abあ", ForwardTrimmer.PrefixWithinUtf8Bytes("abあ", 5));
        Assert.Equal("", ForwardTrimmer.PrefixWithinUtf8Bytes("👍", 3));
    }

    [Fact]
    public void Large_pdf_and_jpeg_attachments_are_removed_and_listed_by_name_and_size()
    {
        var mixed = new Multipart("mixed")
        {
            Text("Proofs attached, please check page 3.\n"),
            Attachment("proof.pdf", "application/pdf", 5 * 1024 * 1024),
            Attachment("写真.jpg", "image/jpeg", 2 * 1024 * 1024 + 100_000),
        };
        var result = Trim(Mail("Proofs", mixed, "Printer <print@shop.example>"), Limit(100 * 1024));
        var copy = Received(result);

        Assert.True(result.Size <= 100 * 1024);
        Assert.False(result.Truncated);
        Assert.IsType<TextPart>(copy.Body);
        Assert.Empty(copy.Attachments);
        Assert.Equal(["proof.pdf", "写真.jpg"], result.Removed.Select(a => a.Name));
        Assert.Equal(5 * 1024 * 1024, result.Removed[0].Size);
        var body = copy.TextBody!;
        Assert.Contains("Proofs attached, please check page 3.", body, StringComparison.Ordinal);
        Assert.Contains("Attachments not forwarded (2):", body, StringComparison.Ordinal);
        Assert.Contains("- proof.pdf (application/pdf, 5 MB)", body, StringComparison.Ordinal);
        Assert.Contains("- 写真.jpg (image/jpeg, 2.1 MB)", body, StringComparison.Ordinal);
        Assert.Equal("Printer" + ForwardTrimmer.ViaSuffix, copy.From.Mailboxes.Single().Name);
    }

    [Fact]
    public void Allow_listed_small_attachments_are_kept_while_they_fit()
    {
        var invite = new TextPart("calendar") { Text = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", FileName = "invite.ics" };
        invite.ContentDisposition = new ContentDisposition(ContentDisposition.Attachment) { FileName = "invite.ics" };
        var mixed = new Multipart("mixed") { Text("Meeting at 3.\n"), invite, Attachment("big.png", "image/png", 300_000) };
        var result = Trim(Mail("Invite", mixed), Limit(100 * 1024, "text/calendar", "image/*"));
        var copy = Received(result);

        Assert.Equal(["invite.ics"], result.Kept.Select(a => a.Name));
        Assert.Equal(["big.png"], result.Removed.Select(a => a.Name));
        Assert.Equal("invite.ics", Assert.Single(copy.Attachments).ContentDisposition!.FileName);
        Assert.Contains("- big.png (image/png, 293 KB)", copy.TextBody!, StringComparison.Ordinal);
    }

    [Fact]
    public void A_copy_with_kept_attachments_is_the_same_bytes_every_time_it_is_built()
    {
        // Found by fuzzing (tests/CloudSpool.Fuzz/regressions/trim): the multipart boundary was random.
        var invite = new TextPart("calendar") { Text = "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", FileName = "invite.ics" };
        var original = Bytes(Mail("Invite", new Multipart("mixed") { Text("Meeting at 3.\n"), invite }));
        byte[] Copy() => Bytes(ForwardTrimmer.Trim(ForwardSource.Load(new MemoryStream(original)), Limit(100 * 1024, "text/calendar"), Addressing()).Message!);

        var first = Copy();
        Assert.Equal(first, Copy());
        Assert.Equal("invite.ics", Assert.Single(MimeMessage.Load(new MemoryStream(first)).Attachments).ContentDisposition!.FileName);
    }

    [Fact]
    public void A_message_with_a_header_folded_over_thousands_of_lines_is_forwarded_as_recovered_text()
    {
        // Found by fuzzing (tests/CloudSpool.Fuzz/regressions/trim): parsing it would take MimeKit minutes.
        var raw = Encoding.ASCII.GetBytes(MessageSummarizerTests.FoldedTo(20_000));
        var source = ForwardSource.Load(new MemoryStream(raw));
        Assert.Null(source.Message);
        Assert.Contains("header field To is folded over", source.ParseError, StringComparison.Ordinal);

        var result = ForwardTrimmer.Trim(source, Limit(4096), Addressing());
        var copy = Received(result);
        Assert.True(result.Truncated);
        Assert.Equal("(unreadable message)", copy.Subject);
    }

    [Fact]
    public void Html_only_mail_becomes_readable_text()
    {
        const string html = """
            <html><head><title>T</title><style>p { color: red }</style><script>alert(1)</script></head>
            <body><h1>Order&nbsp;shipped</h1><p>Hello   <b>Alice</b>,<br>your order &amp; invoice:</p>
            <ul><li>Book</li><li>Pen</li></ul>
            <p><a href="https://shop.example/track/1">Track it</a> or see https://shop.example</p>
            <table><tr><td>Total</td><td>¥1,200</td></tr></table></body></html>
            """;
        var copy = Received(Trim(Mail("Shipped", Text(html, subtype: "html"), "shop@shop.example"), Limit(100 * 1024)));
        var text = copy.TextBody!.Replace("\r\n", "\n", StringComparison.Ordinal);

        Assert.DoesNotContain("<", text.Replace("<https://shop.example/track/1>", "", StringComparison.Ordinal).Replace("<shop@shop.example>", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain("alert", text, StringComparison.Ordinal);
        Assert.DoesNotContain("color", text, StringComparison.Ordinal);
        Assert.Contains("Order shipped\n\nHello Alice,\nyour order & invoice:\n\n- Book\n- Pen", text, StringComparison.Ordinal);
        Assert.Contains("Track it <https://shop.example/track/1> or see https://shop.example", text, StringComparison.Ordinal);
        Assert.Contains("Total ¥1,200", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Alternative_prefers_the_plain_text()
    {
        var alternative = new MultipartAlternative { Text("plain version"), Text("<p>html version</p>", subtype: "html") };
        var text = Received(Trim(Mail("Alt", alternative), Limit(50_000))).TextBody!;
        Assert.Contains("plain version", text, StringComparison.Ordinal);
        Assert.DoesNotContain("html version", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_huge_text_body_fits_a_small_limit()
    {
        var text = string.Concat(Enumerable.Repeat("All work and no play. ", 500_000)); // 11 MB
        var result = Trim(Mail("Huge", Text(text)), Limit(4096));
        Assert.True(result.Truncated);
        Assert.InRange(result.Size, 3000, 4096);
    }

    [Theory]
    [InlineData("iso-2022-jp")]
    [InlineData("shift_jis")]
    public void A_50_MB_japanese_text_part_is_decoded_only_as_far_as_can_be_shown(string charset)
    {
        var text = string.Concat(Enumerable.Repeat(Japanese, 420_000)); // about 50 MB once encoded
        var original = Mail("巨大", Text(text, charset));
        var path = Path.GetTempFileName();
        try
        {
            using (var file = File.Create(path))
                original.WriteTo(ForwardTrimmer.WireFormat, file);
            Assert.True(new FileInfo(path).Length > 40_000_000);
            GC.Collect();
            var before = GC.GetTotalAllocatedBytes(precise: true);
            using var stream = File.OpenRead(path);
            var result = ForwardTrimmer.Trim(ForwardSource.Load(stream), Limit(100 * 1024), Addressing());
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

            Assert.True(result.Truncated);
            Assert.True(allocated < 100_000_000, $"{allocated / 1_000_000} MB allocated");
            var body = Received(result).TextBody!.Replace("\r\n", "\n", StringComparison.Ordinal);
            Assert.DoesNotContain('\uFFFD', body);
            Assert.Contains("お世話になっております。", body, StringComparison.Ordinal);
            Assert.Contains("[… cut here to fit the phone's limit of 100 KB]", body, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void As_is_keeps_the_original_and_adds_the_loop_guard_and_resent_fields()
    {
        var mixed = new Multipart("mixed") { Text("see attached"), Attachment("a.pdf", "application/pdf", 10_000) };
        var source = ForwardSource.Load(new MemoryStream(Bytes(Mail("As is", mixed))));
        var result = ForwardTrimmer.AsIs(source, Addressing());
        var copy = Received(result);

        Assert.Equal("m:0638123-abcdef01", copy.Headers[ForwardTrimmer.LoopHeader]);
        Assert.Equal("cloudspool@home.example", copy.ResentFrom.Mailboxes.Single().Address);
        Assert.Equal("yamada@example.jp", copy.From.Mailboxes.Single().Address);
        Assert.Equal("a.pdf", Assert.Single(copy.Attachments).ContentDisposition!.FileName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\r\n\r\n")]
    public void An_empty_message_is_skipped_with_its_reason(string raw)
    {
        var result = ForwardTrimmer.Trim(ForwardSource.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw))), Limit(4096), Addressing());
        Assert.Null(result.Message);
        Assert.Contains("nothing readable", result.SkipReason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_message_without_headers_is_forwarded_as_recovered_text()
    {
        var raw = "\0\0garbage without any header\nbut some text: 日本語\n"u8.ToArray();
        var result = ForwardTrimmer.Trim(ForwardSource.Load(new MemoryStream(raw)), Limit(4096), Addressing());
        var copy = Received(result);
        Assert.Equal("(unreadable message)", copy.Subject);
        Assert.Contains("but some text: 日本語", copy.TextBody!, StringComparison.Ordinal);
        Assert.Contains("could not be read as mail", copy.TextBody!, StringComparison.Ordinal);
        Assert.NotNull(copy.Headers[ForwardTrimmer.LoopHeader]);
    }

    [Fact]
    public void A_lying_charset_still_gives_readable_text()
    {
        var raw = "From: a@b.example\r\nSubject: x\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nplain words\r\n"u8.ToArray();
        var copy = Received(ForwardTrimmer.Trim(ForwardSource.Load(new MemoryStream(raw)), Limit(4096), Addressing()));
        Assert.Contains("plain words", copy.TextBody!, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(TestCorpus.MessageNames), MemberType = typeof(TestCorpus))]
    public void Every_corpus_message_trims_within_the_limit(string name)
    {
        foreach (var limit in new[] { 4096, 100 * 1024 })
        {
            using var file = File.OpenRead(Path.Combine(TestCorpus.Directory, name));
            var result = ForwardTrimmer.Trim(ForwardSource.Load(file), Limit(limit, "text/*"), Addressing());
            if (result.Message is null)
            {
                Assert.False(string.IsNullOrWhiteSpace(result.SkipReason));
                continue;
            }
            Assert.True(result.Size <= limit, $"{name}: {result.Size} > {limit}");
            var copy = Received(result);
            Assert.NotNull(copy.Headers[ForwardTrimmer.LoopHeader]);
            Assert.DoesNotContain('\uFFFD', copy.TextBody ?? "");
        }
    }
}
