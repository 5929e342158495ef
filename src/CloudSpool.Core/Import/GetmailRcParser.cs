using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using CloudSpool.Core.Accounts;

namespace CloudSpool.Core.Import;

/// <summary>
/// Reads a getmail6 rc file (one account a file, INI syntax as Python's configparser reads it): <c>[retriever]</c>,
/// <c>[destination]</c>, <c>[options]</c> and <c>[filter-*]</c>. Its seen state is in the oldmail files of the getmail
/// directory. An unknown section or key, a retriever type CloudSpool cannot follow or a syntax error is an
/// <see cref="ImportException"/> naming the line.
/// </summary>
public static partial class GetmailRcParser
{
    private static readonly HashSet<string> RetrieverKeys =
    [
        "type", "server", "port", "username", "password", "password_command", "mailboxes", "use_peek", "move_on_delete",
        "record_mailbox", "imap_search", "imap_on_delete", "use_apop", "use_cram_md5", "use_kerberos", "use_xoauth2", "keyfile",
        "certfile", "ca_certs", "ssl_version", "ssl_ciphers", "ssl_cert_hostname", "ssl_fingerprints", "timeout",
        "envelope_recipient", "delete_dup_msgids",
    ];

    private static readonly HashSet<string> OptionKeys =
    [
        "delete", "delete_after", "delete_bigger_than", "read_all", "max_messages_per_session", "max_message_size",
        "max_bytes_per_session", "verbose", "message_log", "message_log_syslog", "message_log_verbose", "delivered_to", "received",
        "skip_imap_fetch_size", "to_oldmail_on_each_mail", "fingerprint", "netrc_file", "use_netrc", "logfile",
    ];

    private sealed record Value(string Text, int Line);

    /// <param name="text">The rc file's text.</param>
    /// <param name="file">Its path.</param>
    /// <param name="getmailDirectory">Where getmail kept its oldmail files (--getmaildir; by default the rc file's directory).</param>
    public static ImportedAccount Parse(string text, string file, string? getmailDirectory = null)
    {
        var sections = Read(text, file);
        if (!sections.TryGetValue("retriever", out var r))
            throw new ImportException(file, 0, "no [retriever] section: nothing to import");
        var options = sections.TryGetValue("options", out var o) ? o : [];
        foreach (var (name, values) in sections)
        {
            var known = name switch
            {
                "retriever" => RetrieverKeys,
                "options" => OptionKeys,
                _ => null,
            };
            if (known is null)
                continue;
            foreach (var (key, value) in values)
            {
                if (!known.Contains(key))
                    throw new ImportException(file, value.Line, $"unknown key '{key}' in [{name}]");
            }
        }

        var notes = new List<ImportNote>();
        void Note(Dictionary<string, Value> section, string key, string reason)
        {
            if (section.TryGetValue(key, out var v))
                notes.Add(new ImportNote(key == "password" ? "password ***" : $"{key} = {v.Text}", v.Line, reason));
        }
        foreach (var (name, values) in sections)
        {
            if (name == "destination")
                notes.Add(new ImportNote("[destination] " + (values.TryGetValue("type", out var t) ? t.Text : ""), values.Values.Select(v => v.Line).DefaultIfEmpty(0).Min() - 1,
                    "CloudSpool keeps mail in its spool and serves it over POP3 (the edge): point the mail client at the edge"));
            else if (name.StartsWith("filter", StringComparison.Ordinal))
                notes.Add(new ImportNote($"[{name}]", values.Values.Select(v => v.Line).DefaultIfEmpty(0).Min() - 1, "no filters: every message is stored"));
            else if (name is not ("retriever" or "options"))
                throw new ImportException(file, values.Values.Select(v => v.Line).DefaultIfEmpty(0).Min() - 1, $"unknown section [{name}]");
        }

        var type = Require(r, "type", file);
        var match = RetrieverType().Match(type.Text);
        if (!match.Success)
            throw new ImportException(file, type.Line, $"retriever type '{type.Text}': CloudSpool follows the Simple, BrokenUIDL and Multidrop POP3 and IMAP retrievers (POP3 and IMAP only)");
        var kind = match.Groups["kind"].Value;
        var protocol = match.Groups["proto"].Value == "IMAP" ? UpstreamProtocol.Imap : UpstreamProtocol.Pop3;
        if (kind == "BrokenUIDL" && protocol == UpstreamProtocol.Imap)
            throw new ImportException(file, type.Line, $"retriever type '{type.Text}' does not exist in getmail");
        var tls = match.Groups["ssl"].Success ? TlsMode.Implicit : TlsMode.None;
        if (tls == TlsMode.None)
            notes.Add(new ImportNote($"type = {type.Text}", type.Line, "plain text, as getmail did: CloudSpool takes it over as --tls none (prefer the SSL retriever's port with --tls implicit)"));
        if (kind == "Multidrop")
            Note(r, "envelope_recipient", "multidrop: CloudSpool puts all of the account's mail into one mailbox");

        var server = Require(r, "server", file).Text;
        var username = Require(r, "username", file).Text;
        var port = 0;
        if (r.TryGetValue("port", out var p) && !(int.TryParse(p.Text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and < 65536))
            throw new ImportException(file, p.Line, $"'{p.Text}' is not a port");
        var effectivePort = port != 0 ? port : AccountDefinition.DefaultPort(protocol, tls);

        var password = ImportedPassword.None;
        if (r.TryGetValue("password_command", out var command))
            password = new ImportedPassword(PasswordSource.Command, string.Join(' ', Tuple(command, file)), command.Line);
        else if (r.TryGetValue("password", out var pw))
            password = new ImportedPassword(PasswordSource.Inline, pw.Text, pw.Line);

        string? auth = null;
        if (Bool(r, "use_apop", false, file))
            auth = "APOP";
        if (Bool(r, "use_cram_md5", false, file))
            auth = "CRAM-MD5";
        if (Bool(r, "use_xoauth2", false, file))
            throw new ImportException(file, r["use_xoauth2"].Line, "XOAUTH2 logins need a token, not a password: CloudSpool does not support them");
        Note(r, "use_kerberos", "no Kerberos");
        Note(r, "keyfile", "no client certificates");
        Note(r, "certfile", "no client certificates");
        Note(r, "ssl_version", "TLS 1.2 or 1.3 is negotiated");
        Note(r, "ssl_ciphers", "TLS 1.2 or 1.3 is negotiated with the system's ciphers");
        Note(r, "ssl_fingerprints", "not pinned: the certificate is validated against the system's roots (or the --trust-cert file)");
        Note(r, "ssl_cert_hostname", "the name checked is the host's");
        Note(r, "timeout", "the timeout is Pull:Timeout");
        Note(r, "move_on_delete", "deleted messages are deleted, not moved");
        Note(r, "imap_on_delete", "deleted messages are flagged \\Deleted and expunged by UID");
        Note(r, "imap_search", "every message of the folder not stored yet is fetched");
        Note(r, "record_mailbox", "messages are stored byte for byte, no header added");
        Note(r, "delete_dup_msgids", "duplicates are recognised by the mailbox's dedup key");
        var trust = r.TryGetValue("ca_certs", out var ca) ? ca.Text : null;

        IReadOnlyList<string> folders = ["INBOX"];
        if (r.TryGetValue("mailboxes", out var mailboxes))
        {
            if (protocol == UpstreamProtocol.Pop3)
                throw new ImportException(file, mailboxes.Line, "'mailboxes' is for IMAP retrievers");
            if (mailboxes.Text.Trim() == "ALL")
                throw new ImportException(file, mailboxes.Line, "mailboxes = ALL: CloudSpool pulls the folders named; list them, e.g. mailboxes = (\"INBOX\", \"Work\")");
            folders = Tuple(mailboxes, file);
        }

        var leave = LeavePolicy.Keep;
        if (Bool(options, "delete", false, file))
            leave = new LeavePolicy { DeleteWhenStored = true };
        else
        {
            var after = Int(options, "delete_after", file);
            var bigger = Int(options, "delete_bigger_than", file);
            leave = new LeavePolicy { DeleteAfterDays = after > 0 ? (int)after : null, DeleteLargerThan = bigger > 0 ? bigger : null };
        }
        if (Bool(options, "read_all", true, file))
        {
            var readAll = options.GetValueOrDefault("read_all");
            notes.Add(new ImportNote(readAll is null ? "read_all (getmail's default: true)" : $"read_all = {readAll.Text}", readAll?.Line ?? 0,
                "CloudSpool fetches every message it has not stored, once: what getmail fetched before stays marked as seen"));
        }
        Note(options, "max_messages_per_session", "CloudSpool fetches every new message in one run");
        Note(options, "max_bytes_per_session", "CloudSpool fetches every new message in one run");
        Note(options, "max_message_size", "the size limit is Pull:MaxMessageBytes, the same for every account");
        Note(options, "delivered_to", "messages are stored byte for byte, no header added");
        Note(options, "received", "messages are stored byte for byte, no header added");
        Note(options, "message_log", "CloudSpool logs to standard error; `cloudspool status` and `messages list` tell what was stored");
        Note(options, "netrc_file", "passwords come from a secret file or a CLOUDSPOOL_SECRET_* variable");
        Note(options, "use_netrc", "passwords come from a secret file or a CLOUDSPOOL_SECRET_* variable");

        // getmail keeps one oldmail file for a POP3 retriever and one per folder for an IMAP one; a BrokenUIDL retriever
        // keeps none (it cannot leave mail on the server and tell it apart).
        var directory = getmailDirectory ?? Path.GetDirectoryName(Path.GetFullPath(file))!;
        var baseName = StripChars().Replace($"oldmail-{server}-{effectivePort}-{username}", "-");
        var seen = new List<SeenSource>();
        if (kind == "BrokenUIDL")
            notes.Add(new ImportNote($"type = {type.Text}", type.Line, "getmail keeps no record for this retriever (the server's UIDLs are broken): none is imported"));
        else if (protocol == UpstreamProtocol.Pop3)
            seen.Add(new SeenSource(SeenFormat.GetmailOldmail, Path.Combine(directory, baseName), "", [], Required: !leave.DeleteWhenStored));
        else
        {
            foreach (var folder in folders)
                seen.Add(new SeenSource(SeenFormat.GetmailOldmail, Path.Combine(directory, baseName + "-" + StripChars().Replace(folder, ".")), folder, [], Required: !leave.DeleteWhenStored));
        }

        var fileName = Path.GetFileName(file);
        var label = fileName is "getmailrc" or "rc" ? $"{username}@{server}" : fileName;
        var nameSource = label.StartsWith("getmailrc-", StringComparison.Ordinal) ? label["getmailrc-".Length..] : label;
        return new ImportedAccount
        {
            Tool = ImportTool.Getmail,
            File = file,
            Line = type.Line,
            Label = label,
            Name = ImportNames.Sanitize(nameSource) ?? "getmail",
            Protocol = protocol,
            Host = server,
            Port = port,
            Tls = tls,
            TrustedCertificateFile = trust,
            Username = username,
            AuthMechanism = auth,
            Folders = folders,
            Leave = leave,
            Password = password,
            Seen = seen,
            Notes = notes,
        };
    }

    [GeneratedRegex("^(?<kind>Simple|BrokenUIDL|Multidrop)(?<proto>POP3|IMAP)(?<ssl>SSL)?Retriever$")]
    private static partial Regex RetrieverType();

    [GeneratedRegex(@"[/\\:;<>|]+")]
    private static partial Regex StripChars();

    private static Value Require(Dictionary<string, Value> section, string key, string file) =>
        section.TryGetValue(key, out var v) && v.Text.Length > 0 ? v : throw new ImportException(file, 0, $"[retriever] has no {key}");

    private static bool Bool(Dictionary<string, Value> section, string key, bool fallback, string file) =>
        !section.TryGetValue(key, out var v) ? fallback : v.Text.ToLowerInvariant() switch
        {
            "1" or "yes" or "true" or "on" => true,
            "0" or "no" or "false" or "off" => false,
            _ => throw new ImportException(file, v.Line, $"'{key}' takes true or false, not '{v.Text}'"),
        };

    private static long Int(Dictionary<string, Value> section, string key, string file) =>
        !section.TryGetValue(key, out var v) ? 0
        : long.TryParse(v.Text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
        : throw new ImportException(file, v.Line, $"'{key}' takes a whole number, not '{v.Text}'");

    /// <summary>A Python tuple of strings as getmail writes them: ("a", 'b') or ("a",); a bare word is a tuple of one.</summary>
    private static List<string> Tuple(Value value, string file)
    {
        var text = value.Text.Trim();
        if (!text.StartsWith('('))
            return [text];
        if (!text.EndsWith(')'))
            throw new ImportException(file, value.Line, $"'{text}' is not a tuple of strings: expected (\"a\", \"b\")");
        var result = new List<string>();
        var i = 1;
        while (true)
        {
            while (i < text.Length - 1 && (char.IsWhiteSpace(text[i]) || text[i] == ','))
                i++;
            if (i >= text.Length - 1)
                return result.Count > 0 ? result : throw new ImportException(file, value.Line, "an empty tuple");
            var quote = text[i];
            if (quote is not ('"' or '\''))
                throw new ImportException(file, value.Line, $"'{text}' is not a tuple of strings: expected quoted strings");
            var sb = new StringBuilder();
            i++;
            while (i < text.Length - 1 && text[i] != quote)
            {
                if (text[i] == '\\' && i + 1 < text.Length - 1)
                    i++;
                sb.Append(text[i++]);
            }
            if (i >= text.Length - 1)
                throw new ImportException(file, value.Line, "a string in the tuple is never closed");
            i++;
            result.Add(sb.ToString());
        }
    }

    /// <summary>Sections of key = value (or key: value) lines; '#' and ';' start comment lines; indented lines continue a value.</summary>
    private static Dictionary<string, Dictionary<string, Value>> Read(string text, string file)
    {
        var sections = new Dictionary<string, Dictionary<string, Value>>(StringComparer.Ordinal);
        Dictionary<string, Value>? current = null;
        string? lastKey = null;
        var lines = text.Split('\n');
        for (var n = 1; n <= lines.Length; n++)
        {
            var raw = lines[n - 1].TrimEnd('\r');
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
                continue;
            if (char.IsWhiteSpace(raw[0]) && current is not null && lastKey is not null)
            {
                current[lastKey] = current[lastKey] with { Text = (current[lastKey].Text + "\n" + line).Trim() };
                continue;
            }
            if (line.StartsWith('['))
            {
                if (!line.EndsWith(']'))
                    throw new ImportException(file, n, $"'{line}' is not a section header: expected [name]");
                var name = line[1..^1].Trim();
                if (sections.ContainsKey(name))
                    throw new ImportException(file, n, $"section [{name}] appears twice");
                current = new Dictionary<string, Value>(StringComparer.Ordinal);
                // The line of a section's header is kept as a value line one above its first key (for messages).
                sections[name] = current;
                lastKey = null;
                continue;
            }
            var separator = line.IndexOfAny(['=', ':']);
            if (separator <= 0)
                throw new ImportException(file, n, $"'{line}' is not a setting: expected key = value");
            if (current is null)
                throw new ImportException(file, n, "a setting before any [section]");
            lastKey = line[..separator].Trim().ToLowerInvariant();
            current[lastKey] = new Value(line[(separator + 1)..].Trim(), n);
        }
        return sections;
    }
}
