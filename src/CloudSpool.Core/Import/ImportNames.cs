using System.Text;

namespace CloudSpool.Core.Import;

/// <summary>Turns the old tools' names (poll names, mpop accounts, local users) into CloudSpool account and mailbox names.</summary>
public static class ImportNames
{
    /// <summary>
    /// Lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters; anything
    /// else becomes '-'. Null when nothing usable is left.
    /// </summary>
    public static string? Sanitize(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text.ToLowerInvariant())
            sb.Append(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-' ? c : '-');
        var name = sb.ToString().TrimStart('.', '_', '-').TrimEnd('-');
        if (name.Length > 63)
            name = name[..63].TrimEnd('-');
        return name.Length == 0 ? null : name;
    }

    /// <summary>Gives accounts that would share a name a suffix (-2, -3, ...), in their order.</summary>
    public static IReadOnlyList<ImportedAccount> Unique(IEnumerable<ImportedAccount> accounts)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<ImportedAccount>();
        foreach (var account in accounts)
        {
            var name = account.Name;
            for (var n = 2; !taken.Add(name); n++)
                name = $"{account.Name[..Math.Min(account.Name.Length, 58)]}-{n}";
            result.Add(account with { Name = name });
        }
        return result;
    }
}
