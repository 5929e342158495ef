using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>Builds raw test messages (CRLF line ends, as a server sends them).</summary>
public static class TestMail
{
    public static byte[] Create(string subject, string? messageId = null, int bodyBytes = 100, string? received = null)
    {
        var sb = new StringBuilder();
        if (received is not null)
            sb.Append("Received: ").Append(received).Append("\r\n");
        sb.Append("From: Sender <sender@example.org>\r\n");
        sb.Append("To: alice@example.com\r\n");
        sb.Append("Subject: ").Append(subject).Append("\r\n");
        sb.Append("Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n");
        sb.Append("Message-ID: <").Append(messageId ?? Guid.NewGuid().ToString("N") + "@example.org").Append(">\r\n");
        sb.Append("\r\n");
        var line = "The quick brown fox jumps over the lazy dog. 0123456789\r\n";
        while (sb.Length < bodyBytes)
            sb.Append(line);
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    /// <summary>The corpus of odd real-world messages in the repository (tests/corpus/mimekit).</summary>
    public static string CorpusDirectory => CloudSpool.TestSupport.Corpus.Directory;

    public static IEnumerable<string> CorpusFiles() => CloudSpool.TestSupport.Corpus.Files();
}
