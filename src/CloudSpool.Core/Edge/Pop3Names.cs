using System.Text.RegularExpressions;

namespace CloudSpool.Core.Edge;

/// <summary>The naming rules of POP3 users and client identities.</summary>
public static partial class Pop3Names
{
    /// <summary>Separates the user from the client in a login name (<c>alice+laptop</c>).</summary>
    public const char ClientSeparator = '+';

    // \z, not $: "$" also matches before a final line feed, which made "alice+x\n" a client identity of its own.
    [GeneratedRegex(@"\A[a-z0-9][a-z0-9._-]{0,62}\z", RegexOptions.CultureInvariant)]
    private static partial Regex NameRegex();

    [GeneratedRegex(@"\A[a-z0-9][a-z0-9._-]{0,31}\z", RegexOptions.CultureInvariant)]
    private static partial Regex ClientRegex();

    /// <summary>A valid user or mailbox name: lower-case letters, digits, '.', '_', '-', at most 63 characters.</summary>
    public static bool IsValidName(string name) => NameRegex().IsMatch(name);

    /// <summary>
    /// Splits a login name into user and client identity: <c>alice</c> → (alice, alice), <c>alice+laptop</c>
    /// → (alice, alice+laptop). Case-insensitive (folded to lower case). False when it is not well formed.
    /// </summary>
    public static bool TryParseLogin(string login, out string user, out string client)
    {
        ArgumentNullException.ThrowIfNull(login);
        user = client = string.Empty;
        // Only ASCII is folded: Unicode case mapping turns some other letters into ASCII ones (KELVIN SIGN into "k").
        if (!System.Text.Ascii.IsValid(login))
            return false;
        var folded = login.ToLowerInvariant();
        var plus = folded.IndexOf(ClientSeparator, StringComparison.Ordinal);
        user = plus < 0 ? folded : folded[..plus];
        client = folded;
        if (!IsValidName(user))
            return false;
        return plus < 0 || ClientRegex().IsMatch(folded[(plus + 1)..]);
    }
}
