using System.Globalization;
using CloudSpool.Core.Accounts;

namespace CloudSpool.Core.Import;

/// <summary>
/// Reads a fetchmailrc (fetchmail 6 syntax: <c>set</c>, <c>defaults</c>, <c>poll</c>/<c>skip</c> statements with server and
/// user options) into accounts, one per <c>user</c> of each poll. What CloudSpool does not do (delivery through an MDA or
/// SMTP, multidrop, fetch limits) is reported with the reason; an unknown keyword, a syntax error or a protocol other than
/// POP3 and IMAP is an <see cref="ImportException"/> naming the line.
/// </summary>
public static class FetchmailrcParser
{
    /// <summary>Keywords followed by one value.</summary>
    private static readonly HashSet<string> OneValue =
    [
        "via", "proto", "protocol", "port", "service", "auth", "authenticate", "timeout", "interval", "qvirtual", "principal",
        "esmtpname", "esmtppassword", "interface", "monitor", "plugin", "plugout", "user", "username", "password", "pass",
        "smtpaddress", "smtpname", "mda", "bsmtp", "preconnect", "postconnect", "limit", "warnings", "batchlimit", "fetchlimit",
        "fetchsizelimit", "fastuidl", "expunge", "properties", "sslproto", "sslcert", "sslkey", "sslcertfile", "sslcertpath",
        "sslfingerprint", "sslcommonname", "envelope",
    ];

    /// <summary>Keywords followed by a list of values, up to the next keyword.</summary>
    private static readonly HashSet<string> ListValue = ["aka", "localdomains", "is", "to", "folder", "smtphost", "fetchdomains", "antispam"];

    /// <summary>Keywords without a value (any of them may follow <c>no</c>).</summary>
    private static readonly HashSet<string> Flag =
    [
        "keep", "nokeep", "flush", "limitflush", "fetchall", "rewrite", "stripcr", "forcecr", "pass8bits", "dropstatus",
        "dropdelivered", "mimedecode", "idle", "ssl", "sslcertck", "lmtp", "showdots", "uidl", "dns", "checkalias", "tracepolls",
        "envelope", "badheader",
    ];

    private static readonly HashSet<string> Statement = ["poll", "skip", "defaults", "set"];

    /// <param name="text">The file's text.</param>
    /// <param name="file">Its path, for messages and relative paths.</param>
    /// <param name="home">The home directory of its owner (~ and the default ~/.fetchids).</param>
    /// <param name="idFile">The .fetchids file to read instead of the configured one (fetchmail -i).</param>
    /// <param name="fetchmailHome">$FETCHMAILHOME, where .fetchids is unless the file says (set idfile); null: <paramref name="home"/>.</param>
    public static IReadOnlyList<ImportedAccount> Parse(string text, string file, string home, string? idFile = null, string? fetchmailHome = null)
    {
        var tokens = FetchmailTokenizer.Tokenize(text, file);
        var polls = new List<(string Name, bool Skip, int Line, List<FetchmailSetting> Server, List<List<FetchmailSetting>> Users)>();
        var defaults = new List<FetchmailSetting>();
        long? daemon = null;
        var daemonLine = 0;
        var globalNotes = new List<ImportNote>();
        var i = 0;
        while (i < tokens.Count)
        {
            var t = tokens[i++];
            switch (t.Keyword)
            {
                case "set" when !t.Quoted:
                    {
                        var negated = i < tokens.Count && tokens[i].Is("no");
                        if (negated)
                            i++;
                        var name = Take(tokens, ref i, file, t, "a setting after 'set'");
                        switch (name.Keyword)
                        {
                            case "daemon":
                                var value = Take(tokens, ref i, file, name, "the seconds after 'set daemon'");
                                if (!long.TryParse(value.Text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds))
                                    throw new ImportException(file, value.Line, $"'set daemon' takes the seconds between polls, not '{value.Text}'");
                                (daemon, daemonLine) = (seconds, t.Line);
                                break;
                            case "idfile":
                                var configured = ExpandHome(Take(tokens, ref i, file, name, "a file after 'set idfile'").Text, home, file);
                                idFile ??= configured; // fetchmail -i (here --state) wins over the file's own
                                break;
                            case "logfile" or "pidfile" or "postmaster" or "properties" or "fetchmailrc":
                                var v = Take(tokens, ref i, file, name, $"a value after 'set {name.Text}'");
                                globalNotes.Add(new ImportNote($"set {name.Text} {v.Text}", t.Line, "fetchmail's own; CloudSpool logs to standard error and keeps its state in the spool"));
                                break;
                            case "bouncemail" or "spambounce" or "softbounce" or "syslog" or "invisible" or "showdots":
                                globalNotes.Add(new ImportNote($"set {(negated ? "no " : "")}{name.Text}", t.Line, "fetchmail's own delivery and logging; CloudSpool delivers nothing by SMTP"));
                                break;
                            default:
                                throw new ImportException(file, name.Line, $"unknown setting 'set {name.Text}'");
                        }
                        break;
                    }
                case "defaults" when !t.Quoted:
                    defaults.AddRange(ReadOptions(tokens, ref i, file, out var defaultUsers));
                    foreach (var u in defaultUsers)
                        defaults.AddRange(u);
                    break;
                case "poll" or "skip" when !t.Quoted:
                    {
                        var name = Take(tokens, ref i, file, t, $"a server name after '{t.Text}'");
                        var server = ReadOptions(tokens, ref i, file, out var users);
                        if (users.Count == 0)
                            users.Add([]);
                        polls.Add((name.Text, t.Is("skip"), t.Line, server, users));
                        break;
                    }
                default:
                    throw new ImportException(file, t.Line, $"expected poll, skip, defaults or set, found '{t.Text}'");
            }
        }

        var schedule = (string?)null;
        if (daemon is { } every && every > 0)
        {
            schedule = DaemonSchedule.ToCron(every, out var exact);
            if (!exact)
                globalNotes.Add(new ImportNote($"set daemon {every}", daemonLine, $"every {every} s is not a cron step: the schedule is \"{schedule}\", the nearest one"));
        }
        else
        {
            globalNotes.Add(new ImportNote("set daemon", 0, "no polling interval: the account gets the default schedule (Pull:DefaultSchedule)"));
        }

        var accounts = new List<ImportedAccount>();
        foreach (var poll in polls)
        {
            foreach (var user in poll.Users)
            {
                var settings = new List<FetchmailSetting>(defaults);
                settings.AddRange(poll.Server);
                settings.AddRange(user);
                accounts.Add(Map(poll.Name, poll.Skip, poll.Line, poll.Users.Count > 1, settings, schedule, daemon, globalNotes, file, home, idFile, fetchmailHome));
            }
        }
        if (accounts.Count == 0)
            throw new ImportException(file, 0, "no poll statement: nothing to import");
        return ImportNames.Unique(accounts);
    }

    private static FetchmailToken Take(IReadOnlyList<FetchmailToken> tokens, ref int i, string file, FetchmailToken after, string what)
    {
        if (i >= tokens.Count)
            throw new ImportException(file, after.Line, $"expected {what}, found the end of the file");
        return tokens[i++];
    }

    /// <summary>Options up to the next statement: the server's, and one list per <c>user</c>.</summary>
    private static List<FetchmailSetting> ReadOptions(IReadOnlyList<FetchmailToken> tokens, ref int i, string file, out List<List<FetchmailSetting>> users)
    {
        var server = new List<FetchmailSetting>();
        users = [];
        var current = server;
        while (i < tokens.Count && !(Statement.Contains(tokens[i].Keyword) && !tokens[i].Quoted))
        {
            var t = tokens[i++];
            var negated = t.Is("no");
            if (negated)
                t = Take(tokens, ref i, file, t, "a keyword after 'no'");
            var keyword = t.Keyword;
            if (t.Quoted || !(OneValue.Contains(keyword) || ListValue.Contains(keyword) || Flag.Contains(keyword)))
                throw new ImportException(file, t.Line, t.Quoted ? $"expected a keyword, found the string \"{t.Text}\"" : $"unknown keyword '{t.Text}'");
            if (negated || (Flag.Contains(keyword) && !(OneValue.Contains(keyword) && i < tokens.Count && IsValue(tokens[i]))))
            {
                current.Add(new FetchmailSetting(keyword, [], negated, t.Line));
                continue;
            }
            var values = new List<string>();
            if (OneValue.Contains(keyword))
            {
                if (keyword == "envelope" && i + 1 < tokens.Count && int.TryParse(tokens[i].Text, out _) && IsValue(tokens[i + 1]))
                    values.Add(tokens[i++].Text);
                var value = Take(tokens, ref i, file, t, $"a value after '{t.Text}'");
                if (!IsValue(value))
                    throw new ImportException(file, value.Line, $"expected a value after '{t.Text}', found the keyword '{value.Text}'");
                values.Add(value.Text);
            }
            else
            {
                while (i < tokens.Count && IsValue(tokens[i]))
                    values.Add(tokens[i++].Text);
                if (values.Count == 0)
                    throw new ImportException(file, t.Line, $"expected at least one value after '{t.Text}'");
            }
            if (keyword is "user" or "username")
            {
                current = [];
                users.Add(current);
            }
            current.Add(new FetchmailSetting(keyword, values, false, t.Line));
        }
        return server;
    }

    private static bool IsValue(FetchmailToken t) =>
        t.Quoted || !(OneValue.Contains(t.Keyword) || ListValue.Contains(t.Keyword) || Flag.Contains(t.Keyword) || Statement.Contains(t.Keyword) || t.Keyword == "no");

    private static string ExpandHome(string path, string home, string file) =>
        path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(home, path[2..])
        : Path.IsPathRooted(path) ? path
        : Path.GetFullPath(path, Path.GetDirectoryName(Path.GetFullPath(file))!);

    private static ImportedAccount Map(string poll, bool skip, int line, bool severalUsers, List<FetchmailSetting> settings, string? schedule, long? daemon,
        List<ImportNote> globalNotes, string file, string home, string? idFile, string? fetchmailHome)
    {
        // Later settings win (defaults, then the poll's, then the user's).
        FetchmailSetting? Last(params string[] keywords) => settings.LastOrDefault(s => keywords.Contains(s.Keyword));
        var notes = new List<ImportNote>(globalNotes);
        void Note(FetchmailSetting s, string reason) => notes.Add(new ImportNote(s.Text, s.Line, reason));

        var protocolSetting = Last("proto", "protocol");
        var protocolName = protocolSetting?.Value.ToLowerInvariant() ?? "auto";
        var (protocol, auth) = protocolName switch
        {
            "pop3" => (UpstreamProtocol.Pop3, (string?)null),
            "apop" => (UpstreamProtocol.Pop3, "APOP"),
            "imap" => (UpstreamProtocol.Imap, null),
            "auto" => throw new ImportException(file, protocolSetting?.Line ?? line,
                $"poll {poll} names no protocol (fetchmail tries IMAP, then POP3): add 'proto pop3' or 'proto imap' to it, as the server speaks"),
            _ => throw new ImportException(file, protocolSetting!.Line, $"protocol '{protocolSetting.Value}' of poll {poll}: CloudSpool speaks only POP3 and IMAP"),
        };
        var user = Last("user", "username")?.Value ?? Environment.UserName;
        var host = Last("via")?.Value ?? poll;

        var notesFor = new Dictionary<string, string>
        {
            ["mda"] = "CloudSpool keeps mail in its spool and serves it over POP3 (the edge); point the mail client at the edge instead of a local delivery",
            ["bsmtp"] = "no local delivery: mail is kept in the spool and served by the edge",
            ["lmtp"] = "no local delivery: mail is kept in the spool and served by the edge",
            ["smtphost"] = "CloudSpool does not forward over SMTP to a local server: mail is kept in the spool and served by the edge",
            ["smtpname"] = "no SMTP delivery", ["smtpaddress"] = "no SMTP delivery", ["fetchdomains"] = "no SMTP delivery",
            ["antispam"] = "no SMTP delivery", ["rewrite"] = "messages are stored byte for byte, headers never rewritten",
            ["stripcr"] = "messages are stored byte for byte", ["forcecr"] = "messages are stored byte for byte",
            ["pass8bits"] = "messages are stored byte for byte", ["mimedecode"] = "messages are stored byte for byte",
            ["dropstatus"] = "messages are stored byte for byte", ["dropdelivered"] = "messages are stored byte for byte",
            ["badheader"] = "messages are stored byte for byte",
            ["aka"] = "multidrop: CloudSpool puts all of the account's mail into one mailbox",
            ["localdomains"] = "multidrop: CloudSpool puts all of the account's mail into one mailbox",
            ["envelope"] = "multidrop: CloudSpool puts all of the account's mail into one mailbox",
            ["qvirtual"] = "multidrop: CloudSpool puts all of the account's mail into one mailbox",
            ["fetchlimit"] = "CloudSpool fetches every new message in one run", ["batchlimit"] = "no SMTP delivery",
            ["fetchsizelimit"] = "CloudSpool lists every message in one run", ["fastuidl"] = "CloudSpool lists every UIDL in one run",
            ["expunge"] = "deletions are committed at the end of each run", ["limit"] = "the size limit is Pull:MaxMessageBytes, the same for every account",
            ["warnings"] = "oversized messages are reported in `cloudspool status`", ["limitflush"] = "oversized messages are left upstream and reported",
            ["timeout"] = "the timeout is Pull:Timeout", ["preconnect"] = "CloudSpool runs no command before connecting",
            ["postconnect"] = "CloudSpool runs no command after connecting", ["plugin"] = "CloudSpool connects directly, through no command",
            ["plugout"] = "no SMTP delivery", ["idle"] = "CloudSpool polls on its schedule; it does not wait in IDLE",
            ["interface"] = "not checked: CloudSpool polls whatever the route", ["monitor"] = "not checked: CloudSpool polls on its schedule",
            ["principal"] = "no Kerberos", ["esmtpname"] = "no SMTP delivery", ["esmtppassword"] = "no SMTP delivery",
            ["sslcert"] = "no client certificates", ["sslkey"] = "no client certificates", ["sslcommonname"] = "the name checked is the host's",
            ["sslcertpath"] = "a directory of CAs is not taken over: CloudSpool trusts the system's roots, and one PEM file per account (--trust-cert)",
            ["sslfingerprint"] = "not pinned: the certificate is validated against the system's roots (or the --trust-cert file)",
            ["properties"] = "fetchmail's own", ["showdots"] = "fetchmail's own", ["tracepolls"] = "fetchmail's own",
            ["dns"] = "fetchmail's own", ["checkalias"] = "fetchmail's own", ["service"] = "", ["port"] = "",
        };
        foreach (var s in settings)
        {
            if (notesFor.TryGetValue(s.Keyword, out var reason) && reason.Length > 0 && !s.Negated)
                Note(s, reason);
        }

        // TLS: 'ssl' is TLS from the first byte; without it fetchmail 6.4 uses STARTTLS when the server offers it, unless
        // sslproto is '' (plain text). CloudSpool never falls back to plain text: STARTTLS is then required.
        var ssl = Last("ssl");
        var sslproto = Last("sslproto");
        TlsMode tls;
        if (ssl is { Negated: false })
            tls = TlsMode.Implicit;
        else if (sslproto is { Value.Length: 0 })
            tls = TlsMode.None;
        else
        {
            tls = TlsMode.StartTls;
            if (sslproto is null)
                notes.Add(new ImportNote("(no ssl)", line, "fetchmail used STARTTLS when the server offered it and plain text otherwise; CloudSpool requires STARTTLS (or `account add --tls none`, when you mean it)"));
        }
        if (sslproto is { Value.Length: > 0 })
            Note(sslproto, "TLS 1.2 or 1.3 is negotiated whatever the version named");
        if (Last("sslcertck") is { Negated: true } certck)
            Note(certck, "CloudSpool always validates the server's certificate: trust a private one with --trust-cert (the account is imported with validation on)");
        var trust = Last("sslcertfile") is { } certfile ? ExpandHome(certfile.Value, home, file) : null;

        var port = 0;
        if (Last("port", "service") is { } portSetting)
        {
            port = portSetting.Value.ToLowerInvariant() switch
            {
                "pop3" => 110, "pop3s" => 995, "imap" or "imap2" => 143, "imaps" => 993,
                var p when int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and < 65536 => n,
                _ => throw new ImportException(file, portSetting.Line, $"'{portSetting.Value}' is not a port: expected a number or pop3, pop3s, imap, imaps"),
            };
        }

        if (Last("auth", "authenticate") is { } authSetting)
        {
            auth = authSetting.Value.ToLowerInvariant() switch
            {
                "any" or "password" => auth,
                "cram-md5" => "CRAM-MD5",
                "ntlm" => "NTLM",
                "gssapi" => "GSSAPI",
                "external" => "EXTERNAL",
                _ => throw new ImportException(file, authSetting.Line, $"authentication '{authSetting.Value}' is not one CloudSpool offers: use password, cram-md5, ntlm, gssapi or external"),
            };
        }

        // Leave policy: fetchmail deletes what it fetched unless 'keep'; 'flush' also deletes old messages.
        var keep = settings.LastOrDefault(s => s.Keyword is "keep" or "nokeep");
        var keeps = keep is { Keyword: "keep", Negated: false };
        if (Last("flush") is { Negated: false } flush)
            Note(flush, "old messages fetchmail left are not deleted; the leave policy decides for what CloudSpool stores");
        var fetchall = Last("fetchall") is { Negated: false } all ? all : null;
        if (fetchall is not null)
            Note(fetchall, "CloudSpool fetches every message it has not stored, once: what fetchmail fetched before stays marked as seen");

        var folders = settings.Where(s => s.Keyword == "folder").SelectMany(s => s.Values).Distinct(StringComparer.Ordinal).ToList();
        if (folders.Count > 0 && protocol == UpstreamProtocol.Pop3)
            Note(Last("folder")!, "POP3 has one mailbox: the folders are ignored");

        var local = Last("is", "to");
        string? localUser = null;
        if (local is not null)
        {
            if (local.Values.Count == 1 && local.Values[0] != "*")
                localUser = local.Values[0];
            else
                Note(local, "multidrop: CloudSpool puts all of the account's mail into one mailbox (--mailbox)");
        }

        var interval = Last("interval");
        var accountSchedule = schedule;
        if (interval is not null && daemon is { } d && int.TryParse(interval.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var every) && every > 1)
        {
            accountSchedule = DaemonSchedule.ToCron(d * every, out var exact);
            if (!exact)
                Note(interval, $"every {d * every} s is not a cron step: the schedule is \"{accountSchedule}\", the nearest one");
        }

        var passwordSetting = Last("password", "pass");
        var password = passwordSetting is null ? ImportedPassword.None : new ImportedPassword(PasswordSource.Inline, passwordSetting.Value, passwordSetting.Line);

        // fetchmail records the UIDLs of POP3 messages it left on the server in .fetchids, under user@server; it keeps no
        // record for IMAP, where it fetches the messages without the \Seen flag and sets it (with fetchall: all of them),
        // so there the record is the server's flags, read at import.
        var seen = new List<SeenSource>();
        if (protocol == UpstreamProtocol.Pop3)
        {
            seen.Add(new SeenSource(SeenFormat.Fetchids, idFile ?? Path.Combine(fetchmailHome ?? home, ".fetchids"), "",
                [$"{user}@{poll}", $"{user}@{host}"], Required: keeps));
        }
        else
        {
            var format = fetchall is null ? SeenFormat.ImapSeenFlag : SeenFormat.ImapAll;
            seen.AddRange((folders.Count > 0 ? folders : ["INBOX"]).Select(f => new SeenSource(format, "", f, [], Required: true)));
        }
        var label = severalUsers ? $"{user}@{poll}" : poll;
        if (skip)
            notes.Add(new ImportNote($"skip {poll}", line, "fetchmail polls it only when named: the account is imported disabled"));
        return new ImportedAccount
        {
            Tool = ImportTool.Fetchmail,
            File = file,
            Line = line,
            Label = label,
            Name = ImportNames.Sanitize(label) ?? "fetchmail",
            LocalUser = localUser,
            Protocol = protocol,
            Host = host,
            Port = port,
            Tls = tls,
            TrustedCertificateFile = trust,
            Username = user,
            AuthMechanism = auth,
            Folders = folders.Count > 0 && protocol == UpstreamProtocol.Imap ? folders : ["INBOX"],
            Leave = keeps ? LeavePolicy.Keep : new LeavePolicy { DeleteWhenStored = true },
            Schedule = accountSchedule,
            Enabled = !skip,
            Password = password,
            Seen = seen,
            Notes = notes,
        };
    }
}
