using System.Security.Cryptography;
using System.Text;

namespace CloudSpool.Pop3;

/// <summary>The APOP digest (RFC 1939 section 7), for <see cref="IPop3Authenticator"/> implementations.</summary>
public static class ApopDigest
{
    /// <summary>Lower-case hex MD5 of <paramref name="timestamp"/> followed by <paramref name="secret"/> (both UTF-8).</summary>
    public static string Compute(string timestamp, string secret)
    {
        ArgumentNullException.ThrowIfNull(timestamp);
        ArgumentNullException.ThrowIfNull(secret);
        // RFC 1939 section 7 fixes MD5; APOP is off unless an authenticator opts in.
#pragma warning disable CA5351
        return Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(timestamp + secret)));
#pragma warning restore CA5351
    }

    /// <summary>True when <paramref name="digest"/> (hex, any case) is the digest of the timestamp and secret; constant time.</summary>
    public static bool Matches(string timestamp, string secret, string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        var expected = Encoding.ASCII.GetBytes(Compute(timestamp, secret));
        var actual = Encoding.ASCII.GetBytes(digest.ToLowerInvariant());
        return CryptographicOperations.FixedTimeEquals(expected, actual);
    }
}
