using System.Globalization;
using CloudSpool.Core.Pull;

namespace CloudSpool.Core.Import;

/// <summary>
/// Reads an old tool's record of the mail it fetched (fetchmail's .fetchids, mpop's UIDLs file, getmail's oldmail files)
/// as seen-ledger keys. A missing file is an <see cref="ImportException"/> where the account keeps mail upstream (without
/// the record, everything there would be fetched again); a line that is not in the tool's format names its line.
/// </summary>
public static class SeenStateReader
{
    /// <param name="account">The account and where its record is.</param>
    /// <param name="pop3Validity">The validity the POP3 pull lists its one scope under.</param>
    public static IReadOnlyList<ImportedSeen> Read(ImportedAccount account, string pop3Validity)
    {
        var result = new List<ImportedSeen>();
        foreach (var source in account.Seen.Where(s => s.Format is not (SeenFormat.ImapSeenFlag or SeenFormat.ImapAll)))
        {
            if (!File.Exists(source.Path))
            {
                if (!source.Required)
                    continue;
                throw new ImportException(source.Path, 0,
                    $"the record of what {account.Tool.ToString().ToLowerInvariant()} fetched for {account.Label} ({account.File}:{account.Line}) does not exist; "
                    + "without it every message it left on the server would be fetched again. Name the file with --state, or add the account with `account add` (--first-run import or skip)");
            }
            var lines = File.ReadAllText(source.Path).TrimEnd('\n').Split('\n');
            switch (source.Format)
            {
                case SeenFormat.Fetchids:
                    result.Add(new ImportedSeen("", pop3Validity, Fetchids(lines, source), source.Path));
                    break;
                case SeenFormat.MpopUidls:
                    result.Add(new ImportedSeen("", pop3Validity, MpopUidls(lines, source), source.Path));
                    break;
                default:
                    result.AddRange(Oldmail(lines, source, account.Protocol == Accounts.UpstreamProtocol.Imap, pop3Validity));
                    break;
            }
        }
        return result;
    }

    /// <summary>Lines <c>user@server UIDL</c>; only this account's owners' lines.</summary>
    private static List<string> Fetchids(string[] lines, SeenSource source)
    {
        var keys = new List<string>();
        for (var n = 1; n <= lines.Length; n++)
        {
            var line = lines[n - 1].TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0 || space == line.Length - 1)
                throw new ImportException(source.Path, n, "not a .fetchids line: expected user@server UIDL");
            if (source.Owners.Contains(line[..space], StringComparer.OrdinalIgnoreCase))
                keys.Add(UpstreamScopes.Pop3Key(line[(space + 1)..]));
        }
        return keys;
    }

    /// <summary>A list starts with a line " COUNT host user", and COUNT UIDLs follow, one a line.</summary>
    private static List<string> MpopUidls(string[] lines, SeenSource source)
    {
        var keys = new List<string>();
        for (var n = 1; n <= lines.Length; n++)
        {
            var line = lines[n - 1].TrimEnd('\r');
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var header = line.StartsWith(' ') ? line[1..].Split(' ', 2) : [];
            if (header.Length != 2 || !int.TryParse(header[0], NumberStyles.None, CultureInfo.InvariantCulture, out var count))
                throw new ImportException(source.Path, n, "not an mpop UIDLs list: expected \" COUNT host user\"");
            if (n + count > lines.Length)
                throw new ImportException(source.Path, n, $"the list says {count} UIDLs, but the file ends before them");
            var mine = source.Owners.Contains(header[1], StringComparer.Ordinal);
            for (var k = 0; k < count; k++)
            {
                var uidl = lines[n + k].TrimEnd('\r');
                if (uidl.Length == 0)
                    throw new ImportException(source.Path, n + k + 1, "an empty UIDL");
                if (mine)
                    keys.Add(UpstreamScopes.Pop3Key(uidl));
            }
            n += count;
        }
        return keys;
    }

    /// <summary>Lines <c>ID\0TIME</c>: a POP3 UIDL, or UIDVALIDITY/UID of an IMAP folder.</summary>
    private static IEnumerable<ImportedSeen> Oldmail(string[] lines, SeenSource source, bool imap, string pop3Validity)
    {
        var byValidity = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        for (var n = 1; n <= lines.Length; n++)
        {
            var line = lines[n - 1].TrimEnd('\r');
            if (line.Length == 0)
                continue;
            var nul = line.IndexOf('\0', StringComparison.Ordinal);
            var id = nul < 0 ? line : line[..nul];
            if (id.Length == 0 || (nul >= 0 && !long.TryParse(line[(nul + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                throw new ImportException(source.Path, n, "not an oldmail line: expected ID, a NUL and the time");
            string validity, key;
            if (imap)
            {
                var slash = id.IndexOf('/', StringComparison.Ordinal);
                if (slash <= 0 || !uint.TryParse(id[..slash], NumberStyles.None, CultureInfo.InvariantCulture, out var v)
                    || !uint.TryParse(id[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
                    throw new ImportException(source.Path, n, $"not an IMAP oldmail entry: expected UIDVALIDITY/UID, found '{id}'");
                // The IMAP pull's identity of a message: the UID as ten digits, under the folder's UIDVALIDITY.
                (validity, key) = (v.ToString(CultureInfo.InvariantCulture), uid.ToString("D10", CultureInfo.InvariantCulture));
            }
            else
            {
                (validity, key) = (pop3Validity, UpstreamScopes.Pop3Key(id));
            }
            if (!byValidity.TryGetValue(validity, out var keys))
                byValidity[validity] = keys = [];
            keys.Add(key);
        }
        return byValidity.Select(v => new ImportedSeen(source.Scope, v.Key, v.Value, source.Path));
    }
}
