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
