using System.Text;
using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Tests;

public sealed class MessageSummarizerTests
{
    private static MessageSummary Summarize(string text) => MessageSummarizer.Summarize(new MemoryStream(Encoding.UTF8.GetBytes(text)));

    [Theory]
    [MemberData(nameof(TestCorpus.MessageNames), MemberType = typeof(TestCorpus))]
    public void Every_corpus_message_is_summarised_without_throwing(string name)
    {
        using var file = File.OpenRead(Path.Combine(TestCorpus.Directory, name));
        var summary = MessageSummarizer.Summarize(file);
        Assert.True(summary.Malformed || summary.ParseError is null);
        Assert.All(new[] { summary.From, summary.To, summary.Subject }, v => Assert.True(v is null || v.Length <= MessageSummary.MaxFieldLength));
    }

    /// <summary>Continuation lines of an address list: one recipient per line.</summary>
    private static string FoldedLines(int recipients) =>
        string.Concat(Enumerable.Range(1, recipients).Select(i => $"\t\"Recipient {i:D5}\" <r{i:D5}@example.com>,\r\n"));

    /// <summary>A message whose To: field has <paramref name="recipients"/> addresses, one per folded line.</summary>
    internal static string FoldedTo(int recipients) =>
        "From: sender@example.com\r\nTo: first@example.com,\r\n" + FoldedLines(recipients)
        + "\tlast@example.com\r\nSubject: many\r\nMessage-ID: <many@example.com>\r\n\r\nbody\r\n";

    private static string Multipart(string secondPart) =>
        "From: a@example.com\r\nSubject: outer\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\n" + secondPart + "\r\n--b--\r\n";

    [Fact]
    public void A_header_field_folded_over_thousands_of_lines_is_flagged_malformed_without_parsing_it()
    {
        // Found by fuzzing (tests/CloudSpool.Fuzz/regressions/ingest): MimeKit's parser time and memory grow with the
        // lines of a field times its length; 20,000 lines (900 KB) would take it minutes.
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var summary = Summarize(FoldedTo(20_000));

        Assert.True(summary.Malformed);
        Assert.Contains("header field To is folded over", summary.ParseError, StringComparison.Ordinal);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), "took " + watch.Elapsed);
    }

    [Theory]
    [InlineData("part")]
    [InlineData("attached message")]
    public void A_header_folded_over_thousands_of_lines_inside_the_body_is_flagged_too(string where)
    {
        var summary = Summarize(Multipart(where == "part"
            ? "Content-Type: text/plain\r\nX-Long: first,\r\n" + FoldedLines(20_000) + "\tlast\r\n\r\ntext"
            : "Content-Type: message/rfc822\r\n\r\n" + FoldedTo(20_000)));

        Assert.True(summary.Malformed);
        Assert.Contains(where == "part" ? "header field X-Long is folded over" : "header field To is folded over", summary.ParseError, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_indented_listing_in_a_body_is_not_taken_for_a_folded_header()
    {
        var listing = string.Concat(Enumerable.Range(1, 5_000).Select(i => $"    line {i:D5} of an indented listing, as code in plain-text mail\r\n"));

        Assert.False(Summarize(Multipart("Content-Type: text/plain\r\n\r\n" + listing)).Malformed);
        Assert.False(Summarize("From: a@example.com\r\nSubject: listing\r\n\r\n" + listing).Malformed);
    }

    [Fact]
    public void A_to_field_of_a_thousand_recipients_one_per_line_is_still_parsed()
    {
        var summary = Summarize(FoldedTo(1_000));

        Assert.False(summary.Malformed, summary.ParseError);
        Assert.Equal("many", summary.Subject);
        Assert.StartsWith("first@example.com, \"Recipient 00001\" <r00001@example.com>", summary.To, StringComparison.Ordinal);
    }

    [Fact]
    public void Decodes_headers_and_lists_attachments()
    {
        var summary = Summarize(
            "From: =?UTF-8?B?5bGx55Sw?= <yamada@example.jp>\r\n" +
            "To: alice@example.com\r\n" +
            "Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n" +
            "Date: Tue, 03 Nov 2026 10:00:00 +0900\r\n" +
            "Message-ID: <abc@example.jp>\r\n" +
            "List-Id: News <news.example.jp>\r\n" +
            "Precedence: bulk\r\n" +
            "Auto-Submitted: auto-generated\r\n" +
            "MIME-Version: 1.0\r\n" +
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
            "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
            "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=proof.pdf\r\n\r\nJVBERi0=\r\n" +
            "--b--\r\n");
        Assert.False(summary.Malformed);
        Assert.Equal("\"山田\" <yamada@example.jp>", summary.From);
        Assert.Equal("テスト", summary.Subject);
        Assert.Equal("abc@example.jp", summary.MessageId);
        Assert.Equal("News <news.example.jp>", summary.ListId);
        Assert.Equal("bulk", summary.Precedence);
        Assert.Equal("auto-generated", summary.AutoSubmitted);
        Assert.Equal(new DateTimeOffset(2026, 11, 3, 10, 0, 0, TimeSpan.FromHours(9)), summary.Date);
        Assert.Equal(1, summary.AttachmentCount);
        Assert.Equal(["proof.pdf"], summary.AttachmentNames);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\r\n\r\n")]
    [InlineData("\0\0\0binary")]
    public void Unparseable_input_is_flagged_malformed_with_the_reason(string text)
    {
        var summary = Summarize(text);
        Assert.True(summary.Malformed);
        Assert.False(string.IsNullOrEmpty(summary.ParseError));
    }

    [Fact]
    public void Huge_header_values_are_bounded()
    {
        var summary = Summarize("Subject: " + new string('x', 100_000) + "\r\n\r\nbody");
        Assert.Equal(MessageSummary.MaxFieldLength, summary.Subject!.Length);
    }
}
