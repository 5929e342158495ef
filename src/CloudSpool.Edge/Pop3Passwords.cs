using CloudSpool.Core.Edge;
using Microsoft.AspNetCore.Identity;

namespace CloudSpool.Edge;

/// <summary>
/// Password hashes of POP3 users: the ASP.NET Core Identity password hasher (PBKDF2 with a per-password salt,
/// versioned format), never home-made crypto.
/// </summary>
public static class Pop3Passwords
{
    private static readonly PasswordHasher<Pop3User> Hasher = new();
    private static readonly Pop3User Nobody = new("-", "-", "");
    // Made with the same hasher and parameters as every stored hash, when the class is first used (by whichever login
    // comes first, known user or not), so checking against it costs what checking a real hash costs.
    private static readonly string DecoyHash = Hasher.HashPassword(Nobody, Guid.NewGuid().ToString("N"));

    /// <summary>Hashes a password for storage.</summary>
    public static string Hash(string password)
    {
        ArgumentException.ThrowIfNullOrEmpty(password);
        return Hasher.HashPassword(Nobody, password);
    }

    /// <summary>True when <paramref name="password"/> matches <paramref name="hash"/>; a malformed hash never matches.</summary>
    public static bool Verify(string hash, string password)
    {
        if (string.IsNullOrEmpty(hash))
            return false;
        try
        {
            return Hasher.VerifyHashedPassword(Nobody, hash, password) != PasswordVerificationResult.Failed;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    /// <summary>Spends the time of one verification, so an unknown user name takes as long as a wrong password.</summary>
    public static void VerifyDecoy(string password) => _ = Verify(DecoyHash, password);

    /// <summary>The decoy hash, for tests to compare its format and cost with a real one.</summary>
    internal static string Decoy => DecoyHash;
}
