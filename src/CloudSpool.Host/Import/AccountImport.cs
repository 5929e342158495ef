using System.Text;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Import;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Security;

namespace CloudSpool.Host.Import;

/// <summary>
/// `cloudspool account import`: reads fetchmail, mpop and getmail configurations and their records of fetched mail,
/// plans every account before anything is written (any error: nothing is), then writes secret files, seen entries and,
/// last, the account (so a run cut short is completed by running it again; an account that exists is left as it is).
/// </summary>
internal static class AccountImport
{
    /// <summary>The configuration files each tool reads when none is named.</summary>
    public static IReadOnlyList<string> DefaultFiles(ImportTool tool, string home)
    {
        var config = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(home, ".config");
        string FirstExisting(string preferred, string other) => File.Exists(preferred) ? preferred : other;
        return tool switch
        {
            ImportTool.Fetchmail => [Path.Combine(home, ".fetchmailrc")],
            ImportTool.Mpop => [FirstExisting(Path.Combine(home, ".mpoprc"), Path.Combine(config, "mpop", "config"))],
            // getmail 6 looks in $XDG_CONFIG_HOME/getmail first, then ~/.getmail.
            _ => [FirstExisting(Path.Combine(config, "getmail", "getmailrc"), Path.Combine(home, ".getmail", "getmailrc"))],
        };
    }

    /// <summary>
    /// Reads every file; throws <see cref="ImportException"/> at the first problem. <paramref name="state"/>, when given, is
    /// where the record of fetched mail is instead of the configured place: fetchmail's .fetchids file, mpop's UIDLs file,
    /// getmail's directory.
    /// </summary>
    public static IReadOnlyList<ImportedAccount> Parse(ImportTool tool, IReadOnlyList<string> files, string home, string? state)
    {
        var accounts = new List<ImportedAccount>();
        foreach (var file in files.Select(Path.GetFullPath))
        {
            if (!File.Exists(file))
                throw new ImportException(file, 0, "no such file");
            var text = File.ReadAllText(file);
            switch (tool)
            {
                case ImportTool.Fetchmail:
                    // fetchmail keeps .fetchids in $FETCHMAILHOME when it is set, else in ~ (set idfile and -i win over both).
                    var fetchmailHome = Environment.GetEnvironmentVariable("FETCHMAILHOME") is { Length: > 0 } fh ? fh : null;
                    accounts.AddRange(FetchmailrcParser.Parse(text, file, home, state is null ? null : Path.GetFullPath(state), fetchmailHome));
                    break;
                case ImportTool.Mpop:
                    var mpop = MpopConfigParser.Parse(text, file, home);
                    accounts.AddRange(state is null ? mpop : mpop.Select(a => a with { Seen = [.. a.Seen.Select(s => s with { Path = Path.GetFullPath(state) })] }));
                    break;
                default:
                    accounts.Add(GetmailRcParser.Parse(text, file, state is null ? null : Path.GetFullPath(state)));
                    break;
            }
        }
        return ImportNames.Unique(accounts);
    }

    /// <summary>
    /// The accounts to create, each with its password reference and seen entries; the problems (invalid accounts) when
    /// any. Throws <see cref="ImportException"/> for a record of fetched mail that cannot be read.
    /// </summary>
    public static IReadOnlyList<PlannedImport> Plan(IReadOnlyList<ImportedAccount> accounts, SecretPolicy secrets, string? defaultMailbox, List<string> problems)
    {
        var plans = new List<PlannedImport>();
        foreach (var a in accounts)
        {
            var mailbox = a.LocalUser is { } local ? ImportNames.Sanitize(local) : defaultMailbox;
            if (mailbox is null)
            {
                problems.Add($"{a.Name} ({a.File}:{a.Line}): no mailbox: the configuration names no local user for it; give one with --mailbox");
                continue;
            }
            var variable = secrets.EnvironmentPrefix + VariablePart(a.Name);
            string passwordRef, advice;
            string? secretFile = null;
            switch (a.Password.Source)
            {
                case PasswordSource.Inline:
                    secretFile = Path.Combine(secrets.Directory, a.Name);
                    passwordRef = "file:" + secretFile;
                    advice = $"the one written at {a.File}:{a.Password.Line}, kept in {secretFile} (mode 0600), never in CloudSpool's configuration or storage; delete it from {a.File} once the account pulls";
                    break;
                case PasswordSource.Command:
                    passwordRef = "env:" + variable;
                    advice = $"not taken over: {a.File}:{a.Password.Line} runs a command for it ({SafeText.Escape(a.Password.Value)}), and CloudSpool runs no command a stored account names "
                        + $"(whoever can write an account row could make the worker run anything). Put the password in {variable} (export {variable}='...'), "
                        + $"or in a secret file: install -d -m 700 {secrets.Directory}; (umask 077; COMMAND > {secrets.Directory}/{a.Name}), then `account remove {a.Name}` and `account add` it with --password-ref file:{secrets.Directory}/{a.Name}";
                    break;
                default:
                    passwordRef = "env:" + variable;
                    advice = $"not in the configuration (the old tool asked for it, or read ~/.netrc): set {variable} (export {variable}='...') wherever the pull runs";
                    break;
            }
            var definition = new AccountDefinition
            {
                Name = a.Name,
                Protocol = a.Protocol,
                Host = a.Host,
                Port = a.Port,
                Tls = a.Tls,
                TrustedCertificateFile = a.TrustedCertificateFile,
                Username = a.Username,
                PasswordRef = passwordRef,
                AuthMechanism = a.AuthMechanism,
                Folders = a.Folders,
                Mailbox = mailbox,
                Leave = a.Leave,
                // What the old tool fetched is in the seen ledger; everything else upstream is pulled.
                FirstRun = FirstRunMode.Import,
                Schedule = a.Schedule,
                Enabled = a.Enabled,
            };
            var source = a.Seen.Count > 0 && !a.Leave.KeepsEverything
                ? a with
                {
                    Notes = [.. a.Notes, new ImportNote($"leave {a.Leave}", 0,
                        $"what {a.Tool.ToString().ToLowerInvariant()} fetched and left on the server stays there: CloudSpool deletes only what it stored itself")],
                }
                : a;
            plans.Add(new PlannedImport(source, definition, SeenStateReader.Read(a, UpstreamScopes.Pop3Validity), secretFile, advice)
            {
                SecretValue = a.Password.Source == PasswordSource.Inline ? a.Password.Value : null,
            });
        }
        return plans;
    }

    private static string VariablePart(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name)
            sb.Append(char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_');
        return sb.ToString().Trim('_') is { Length: > 0 } v ? v.Replace("__", "_", StringComparison.Ordinal) : "ACCOUNT";
    }

    /// <summary>
    /// The secret file of a planned account: null when it can be written (absent, or holding this password already),
    /// else why not (another secret of that name is there).
    /// </summary>
    public static string? SecretConflict(PlannedImport plan)
    {
        if (plan.SecretFile is null || !File.Exists(plan.SecretFile))
            return null;
        return File.ReadAllText(plan.SecretFile).TrimEnd('\r', '\n') == plan.SecretValue
            ? null
            : $"{plan.SecretFile} exists and holds another secret: it is not overwritten; move it away or import under another name";
    }

    /// <summary>Writes the password into a new mode-0600 file in the secrets directory (0700, created if missing).</summary>
    public static void WriteSecret(PlannedImport plan)
    {
        if (plan.SecretFile is null || plan.SecretValue is null || File.Exists(plan.SecretFile))
            return;
        PrivateFiles.EnsureDirectory(Path.GetDirectoryName(plan.SecretFile)!);
        var temporary = plan.SecretFile + ".tmp-" + Guid.NewGuid().ToString("N");
        using (var stream = new FileStream(temporary, PrivateFiles.NewFileOptions(FileAccess.Write)))
        {
            stream.Write(Encoding.UTF8.GetBytes(plan.SecretValue + "\n"));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, plan.SecretFile, overwrite: false);
    }

    /// <summary>Whether the account's record of fetched mail is on the server (IMAP flags), to be read there.</summary>
    public static bool ReadsServer(PlannedImport plan) => plan.Source.Seen.Any(s => s.Format is SeenFormat.ImapSeenFlag or SeenFormat.ImapAll);

    /// <summary>
    /// Reads the record that is the server's (fetchmail's IMAP folders: the \Seen flags, or with fetchall every message),
    /// read-only: the folders are examined (the account is opened as keeping everything), nothing is marked or deleted.
    /// Throws <see cref="UpstreamException"/> when the server cannot be reached or refuses.
    /// </summary>
    public static async Task<PlannedImport> ReadServerAsync(IUpstreamConnector connector, PlannedImport plan, string password, CancellationToken ct)
    {
        var account = plan.Definition with { Leave = LeavePolicy.Keep };
        var read = new List<ImportedSeen>(plan.Seen);
        var session = await connector.ConnectAsync(account, password, ct).ConfigureAwait(false);
        await using (session.ConfigureAwait(false))
        {
            foreach (var source in plan.Source.Seen.Where(s => s.Format is SeenFormat.ImapSeenFlag or SeenFormat.ImapAll))
            {
                var listing = await session.OpenScopeAsync(source.Scope, ct).ConfigureAwait(false);
                IReadOnlyCollection<string> keys = source.Format == SeenFormat.ImapAll
                    ? [.. listing.Messages.Select(m => m.Key)]
                    : await session.SeenFlaggedAsync(ct).ConfigureAwait(false);
                await session.CloseScopeAsync(ct).ConfigureAwait(false);
                var what = source.Format == SeenFormat.ImapAll ? "every message (fetchall)" : "\\Seen flags";
                read.Add(new ImportedSeen(source.Scope, listing.Validity, [.. keys.Order(StringComparer.Ordinal)],
                    $"imap://{account.Host}:{account.EffectivePort}/{source.Scope} ({what}, read now)"));
            }
            await session.CommitAsync(ct).ConfigureAwait(false);
        }
        return plan with { Seen = read };
    }

    /// <summary>The seen entries of one planned account: size unknown, not stored (the old tool delivered them).</summary>
    public static IEnumerable<(ImportedSeen Scope, IReadOnlyCollection<SeenEntry> Entries)> SeenEntries(PlannedImport plan, DateTimeOffset now) =>
        plan.Seen.Where(s => s.Keys.Count > 0).Select(s => (s, (IReadOnlyCollection<SeenEntry>)s.Keys.Distinct(StringComparer.Ordinal)
            .Select(k => new SeenEntry(k, now, Stored: false, MessageKey: null, SeenEntry.UnknownSize)).ToList()));
}
