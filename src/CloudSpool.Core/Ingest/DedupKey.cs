using System.Security.Cryptography;
using System.Text;

namespace CloudSpool.Core.Ingest;

/// <summary>
/// The key under which a mailbox holds a message at most once. The same message reaching one
/// mailbox through two upstream accounts differs in its trace headers (Received, Delivered-To), so
/// the key is the Message-ID together with a hash of the body; a message without a Message-ID is
/// keyed by the hash of all its bytes.
/// </summary>
public static class DedupKey
{
    public static string For(string? messageId, IngestFigures figures)
    {
        var basis = string.IsNullOrWhiteSpace(messageId)
            ? "raw\n" + figures.Sha256
            : "mid\n" + messageId.Trim() + "\n" + figures.BodySha256;
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(basis)));
    }
}
