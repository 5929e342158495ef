using System.Globalization;
using System.Text;
using CloudSpool.Core.Accounts;

namespace CloudSpool.Core.Import;

/// <summary>
/// Reads an mpop configuration (~/.mpoprc or ~/.config/mpop/config): <c>defaults</c>, <c>account NAME [: OTHER,...]</c>
/// (the defaults filled in, then everything of the accounts named), and one command with an optional argument a line.
/// An unknown command or a syntax error is an <see cref="ImportException"/> naming the line.
/// </summary>
public static class MpopConfigParser
{
    private static readonly HashSet<string> Known =
    [
        "host", "port", "timeout", "pipelining", "auth", "user", "password", "passwordeval", "ntlmdomain", "tls", "tls_starttls",
        "tls_trust_file", "tls_crl_file", "tls_fingerprint", "tls_key_file", "tls_cert_file", "tls_certcheck", "tls_min_dh_prime_bits",
        "tls_priorities", "tls_host_override", "delivery", "uidls_file", "only_new", "keep", "killsize", "skipsize", "filter",
        "received_header", "proxy_host", "proxy_port", "socket", "source_ip", "eval",
    ];

    private sealed record Setting(string Value, int Line);

    public static IReadOnlyList<ImportedAccount> Parse(string text, string file, string home)
    {
        var defaults = new Dictionary<string, Setting>(StringComparer.Ordinal);
        var accounts = new List<(string Name, int Line, Dictionary<string, Setting> Settings)>();
        Dictionary<string, Setting> current = defaults;
        var lines = text.Split('\n');
        for (var n = 1; n <= lines.Length; n++)
        {
            var line = lines[n - 1].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var split = line.IndexOfAny([' ', '\t']);
            var command = split < 0 ? line : line[..split];
            var argument = split < 0 ? "" : Unquote(line[(split + 1)..].Trim(), file, n);
            switch (command)
            {
                case "defaults":
                    current = defaults;
                    break;
                case "account":
                    {
                        var colon = argument.IndexOf(':', StringComparison.Ordinal);
                        var name = (colon < 0 ? argument : argument[..colon]).Trim();
                        if (name.Length == 0)
                            throw new ImportException(file, n, "'account' needs a name");
                        if (accounts.Any(a => a.Name == name))
                            throw new ImportException(file, n, $"account '{name}' is defined twice");
                        current = new Dictionary<string, Setting>(defaults, StringComparer.Ordinal);
                        if (colon >= 0)
                        {
                            foreach (var parent in argument[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                            {
                                var from = accounts.FirstOrDefault(a => a.Name == parent);
                                if (from.Settings is null)
                                    throw new ImportException(file, n, $"account '{name}' inherits from '{parent}', which is not defined before it");
                                foreach (var (k, v) in from.Settings)
                                    current[k] = v;
                            }
                        }
                        accounts.Add((name, n, current));
                        break;
                    }
                default:
                    if (!Known.Contains(command))
                        throw new ImportException(file, n, $"unknown command '{command}'");
                    if (command == "eval")
                        throw new ImportException(file, n, "'eval' runs a command to produce configuration lines: CloudSpool does not run it; write its output into the file and import again");
                    current[command] = new Setting(argument, n);
                    break;
            }
        }
        if (accounts.Count == 0)
            throw new ImportException(file, 0, "no account: nothing to import");
        // "account default : NAME" only says which account mpop polls when none is named: NAME is imported once.
        return ImportNames.Unique(accounts.Where(a => a.Name != "default").Select(a => Map(a.Name, a.Line, a.Settings, file, home)));
    }

    /// <summary>An argument in double quotes keeps its spaces; \" and \\ stand for " and \.</summary>
    private static string Unquote(string argument, string file, int line)
    {
        if (!argument.StartsWith('"'))
            return argument;
        var sb = new StringBuilder();
        for (var i = 1; i < argument.Length; i++)
        {
            var c = argument[i];
            if (c == '\\' && i + 1 < argument.Length)
                sb.Append(argument[++i]);
            else if (c == '"')
                return i == argument.Length - 1 ? sb.ToString() : throw new ImportException(file, line, "text after the closing quote");
            else
                sb.Append(c);
        }
        throw new ImportException(file, line, "the quoted argument is never closed");
    }

    private static bool On(Dictionary<string, Setting> s, string key, bool fallback, string file) =>
        !s.TryGetValue(key, out var v) ? fallback : v.Value switch
        {
            "" or "on" => true,
            "off" => false,
            _ => throw new ImportException(file, v.Line, $"'{key}' takes on or off, not '{v.Value}'"),
        };

    private static ImportedAccount Map(string name, int line, Dictionary<string, Setting> s, string file, string home)
    {
        var notes = new List<ImportNote>();
        void Note(string key, string reason)
        {
            if (s.TryGetValue(key, out var v))
                notes.Add(new ImportNote($"{key} {v.Value}".TrimEnd(), v.Line, reason));
        }
        var host = s.TryGetValue("host", out var h) && h.Value.Length > 0 ? h.Value : throw new ImportException(file, line, $"account '{name}' has no host");
        var user = s.TryGetValue("user", out var u) && u.Value.Length > 0 ? u.Value : throw new ImportException(file, line, $"account '{name}' has no user");
        var port = 0;
        if (s.TryGetValue("port", out var p) && !(int.TryParse(p.Value, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and < 65536))
            throw new ImportException(file, p.Line, $"'{p.Value}' is not a port");
        var tls = !On(s, "tls", false, file) ? TlsMode.None : On(s, "tls_starttls", true, file) ? TlsMode.StartTls : TlsMode.Implicit;
        if (!On(s, "tls_certcheck", true, file))
            Note("tls_certcheck", "CloudSpool always validates the server's certificate: trust a private one with --trust-cert (the account is imported with validation on)");
        string? trust = null;
        if (s.TryGetValue("tls_trust_file", out var trustFile) && trustFile.Value is not ("" or "system"))
            trust = Expand(trustFile.Value, home, name, host, user);
        string? auth = null;
        if (s.TryGetValue("auth", out var a))
        {
            auth = a.Value.ToLowerInvariant() switch
            {
                "" or "on" => null,
                "user" => "USER",
                "apop" => "APOP",
                "plain" or "cram-md5" or "scram-sha-1" or "scram-sha-256" or "external" or "gssapi" or "ntlm" or "xoauth2" or "oauthbearer" or "login" => a.Value.ToUpperInvariant(),
                _ => throw new ImportException(file, a.Line, $"authentication '{a.Value}' is not one CloudSpool offers"),
            };
        }

        var keep = On(s, "keep", false, file);
        Note("killsize", "no size-based deletion on the way in: the leave policy decides (delete-larger=SIZE)");
        Note("skipsize", "the size limit is Pull:MaxMessageBytes, the same for every account");
        Note("delivery", "CloudSpool keeps mail in its spool and serves it over POP3 (the edge): point the mail client at the edge");
        Note("filter", "no header filter: every message is stored");
        Note("received_header", "messages are stored byte for byte, no header added");
        Note("pipelining", "CloudSpool pipelines when the server offers it");
        Note("timeout", "the timeout is Pull:Timeout");
        Note("proxy_host", "no SOCKS proxy");
        Note("socket", "CloudSpool connects over TCP");
        Note("source_ip", "the source address is the system's choice");
        Note("tls_fingerprint", "not pinned: the certificate is validated against the system's roots (or the --trust-cert file)");
        Note("tls_cert_file", "no client certificates");
        Note("tls_key_file", "no client certificates");
        Note("tls_priorities", "TLS 1.2 or 1.3 is negotiated");
        Note("ntlmdomain", "no NTLM domain");
        if (!On(s, "only_new", true, file))
            Note("only_new", "CloudSpool fetches every message it has not stored, once: what mpop fetched before stays marked as seen");

        // As mpop does: a password (set or inherited) is used, and passwordeval only runs without one.
        var password = ImportedPassword.None;
        if (s.TryGetValue("password", out var pw))
            password = new ImportedPassword(PasswordSource.Inline, pw.Value, pw.Line);
        else if (s.TryGetValue("passwordeval", out var eval))
            password = new ImportedPassword(PasswordSource.Command, eval.Value, eval.Line);

        var uidls = s.TryGetValue("uidls_file", out var uf) ? uf.Value : "~/.mpop_uidls/%U_at_%H";
        return new ImportedAccount
        {
            Tool = ImportTool.Mpop,
            File = file,
            Line = line,
            Label = name,
            Name = ImportNames.Sanitize(name) ?? "mpop",
            Host = host,
            Port = port,
            Tls = tls,
            TrustedCertificateFile = trust,
            Username = user,
            AuthMechanism = auth,
            Leave = keep ? LeavePolicy.Keep : new LeavePolicy { DeleteWhenStored = true },
            Password = password,
            Seen = [new SeenSource(SeenFormat.MpopUidls, Expand(uidls, home, name, host, user), "", [$"{host} {user}"], Required: keep)],
            Notes = notes,
        };
    }

    private static string Expand(string path, string home, string account, string host, string user)
    {
        path = path.Replace("%U", user, StringComparison.Ordinal).Replace("%H", host, StringComparison.Ordinal)
            .Replace("%C", account, StringComparison.Ordinal);
        return path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(home, path[2..]) : path;
    }
}
