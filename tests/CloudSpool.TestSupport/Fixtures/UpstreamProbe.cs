using MailKit.Net.Pop3;
using MailKit.Security;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>An independent look at the upstream mailbox with MailKit: the oracle for byte-exactness and deletions.</summary>
public static class UpstreamProbe
{
    /// <summary>Every message's UIDL and raw bytes as the server sends them.</summary>
    public static async Task<Dictionary<string, byte[]>> FetchAllAsync(DovecotServer dovecot, string user, string password)
    {
        using var client = new Pop3Client();
        await client.ConnectAsync(dovecot.Host, dovecot.Pop3Port, SecureSocketOptions.None);
        await client.AuthenticateAsync(user, password);
        var uids = await client.GetMessageUidsAsync();
        var result = new Dictionary<string, byte[]>();
        for (var i = 0; i < uids.Count; i++)
        {
            using var stream = await client.GetStreamAsync(i);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            result["u:" + uids[i]] = copy.ToArray();
        }
        await client.DisconnectAsync(quit: false);
        return result;
    }

    public static async Task<int> CountAsync(DovecotServer dovecot, string user, string password)
    {
        using var client = new Pop3Client();
        await client.ConnectAsync(dovecot.Host, dovecot.Pop3Port, SecureSocketOptions.None);
        await client.AuthenticateAsync(user, password);
        var count = client.Count;
        await client.DisconnectAsync(quit: false);
        return count;
    }
}
