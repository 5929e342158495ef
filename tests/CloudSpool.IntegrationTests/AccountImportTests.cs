using System.Text;
using System.Text.Json;
using CloudSpool.TestSupport;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// `cloudspool account import` against the real tools: fetchmail, mpop and getmail6 (from Debian) fetch part of a Dovecot
/// mailbox and record it their way; the import turns their configuration into accounts and their record into the seen
/// ledger; the first pull then stores exactly the messages the old tool never fetched, byte for byte.
/// </summary>
public sealed class AccountImportTests : DovecotAndSpoolTest
{
    private readonly Dictionary<string, byte[]> _sent = [];
    private string Dir(string name)
    {
        var dir = Path.Combine(Spool.TempDirectory, name);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private string Secrets => Path.Combine(Spool.TempDirectory, "secrets");

    private readonly Dictionary<string, string> _extraEnv = [];

    private Dictionary<string, string> Env => Spool.CliEnvironment([("CLOUDSPOOL__Secrets__Directory", Secrets), .. _extraEnv.Select(e => (e.Key, e.Value))]);

    private void Deliver(string user, string subject, string? folder = null)
    {
        var raw = TestMail.Create(subject, bodyBytes: 200 + subject.Length);
        _sent[subject] = raw;
        Dovecot.DeliverRaw(user, raw, folder);
    }

    /// <summary>Runs a tool (installed by tests/run) with extra environment variables, bounded in time.</summary>
    private static async Task<(int ExitCode, string Output)> ToolAsync(string tool, string[] environment, params string[] args)
    {
        if (!ExternalTool.IsInstalled(tool))
            throw new InvalidOperationException(tool + " is not installed: run tests/run, which installs it (apt-get install " + tool + ")");
        var (code, stdout, stderr) = await ExternalTool.RunAsync("env", [.. environment, tool, .. args]);
        return (code, Encoding.UTF8.GetString(stdout) + stderr);
    }

    /// <summary>A maildir the old tool delivers into (the messages it fetched end up there, not in the spool).</summary>
    private static string Maildir(string dir)
    {
        var maildir = Path.Combine(dir, "Maildir");
        foreach (var sub in new[] { "new", "cur", "tmp" })
            Directory.CreateDirectory(Path.Combine(maildir, sub));
        return maildir;
    }

    private static async Task WritePrivateAsync(string path, string text)
    {
        await File.WriteAllTextAsync(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
    }

    private Task<List<string>> AccountNamesAsync() => AccountNamesOfAsync(Env);

    private static async Task<List<string>> AccountNamesOfAsync(IReadOnlyDictionary<string, string> env)
    {
        var list = await CliProcess.RunAsync(env, "account", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Stderr);
        using var doc = JsonDocument.Parse(list.Stdout);
        return [.. doc.RootElement.EnumerateArray().Select(a => a.GetProperty("name").GetString()!).Order()];
    }

    /// <summary>Pulls each account, then checks the mailbox holds exactly <paramref name="expected"/>, each byte for byte as delivered.</summary>
    private async Task PullAndVerifyAsync(string mailbox, string[] accounts, params string[] expected)
    {
        foreach (var account in accounts)
        {
            var pull = await CliProcess.RunAsync(Env, "job", "run", "pull", "--account", account);
            Assert.True(pull.ExitCode == 0, pull.Stdout + pull.Stderr);
        }
        var stored = await Spool.ListAsync(mailbox);
        Assert.Equal(expected.Order(StringComparer.Ordinal), stored.Select(m => m.Summary.Subject).Order(StringComparer.Ordinal));
        foreach (var message in stored)
            Assert.Equal(_sent[message.Summary.Subject!], await Spool.ReadRawAsync(message));
    }

    [Fact]
    public async Task Import_from_fetchmail_marks_what_it_fetched_as_seen_and_the_first_pull_fetches_the_rest()
    {
        Dovecot.AddUser("fm", "pa\"ss w");
        Dovecot.AddUser("fmi", "imap-pw");
        for (var i = 1; i <= 5; i++)
            Deliver("fm", $"fetchmail {i}");
        Deliver("fmi", "fetchmail work 1", "Work");
        Deliver("fmi", "fetchmail work 2", "Work");
        var dir = Dir("fetchmail");
        var rc = Path.Combine(dir, "fetchmailrc");
        // The manual's style: noise words, quoted strings (a double quote inside single ones), two polls, an IMAP folder, an MDA.
        await WritePrivateAsync(rc, $"""
            # ~/.fetchmailrc
            set daemon 300
            poll "127.0.0.1" with proto POP3 port {Dovecot.Pop3Port} and options
                user "fm" there with password 'pa"ss w' is "fmbox" here
                keep, fetchlimit 3 sslproto '' mda "cat > {dir}/delivered.$$"
            poll imap.invalid via 127.0.0.1 proto IMAP port {Dovecot.ImapPort}:
                user fmi password 'imap-pw' is fmbox here folder "Work" keep fetchlimit 1 sslproto '' mda "cat > {dir}/imap.$$"
            """);
        var fetchids = Path.Combine(dir, "fetchids");
        var fetchmail = await ToolAsync("fetchmail", ["FETCHMAILHOME=" + dir], "-d0", "--nosyslog", "-f", rc, "-i", fetchids);
        Assert.True(fetchmail.ExitCode is 0 or 13, fetchmail.Output); // 13: the fetch limit was reached, as meant
        Assert.Equal(3, File.ReadAllLines(fetchids).Length);
        Assert.Equal(3, Directory.GetFiles(dir, "delivered.*").Length);
        Deliver("fm", "fetchmail 6 (new)");

        // Without its .fetchids (and --state) the record is missing: refused, naming it, and nothing is created.
        var missing = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains(".fetchids: the record of what fetchmail fetched for 127.0.0.1", missing.Stderr);
        Assert.Contains("nothing was imported", missing.Stderr);

        var dry = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc, "--state", fetchids, "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stdout + dry.Stderr);
        Assert.Contains("127.0.0.1: would be created", dry.Stdout);
        Assert.Contains($"Pop3 127.0.0.1:{Dovecot.Pop3Port} (None) user fm → mailbox fmbox, leave keep, schedule \"0 */5 * * * ?\"", dry.Stdout);
        Assert.Contains($"seen: 3 messages from {fetchids}", dry.Stdout);
        Assert.Contains("not mapped: mda \"cat > ", dry.Stdout);
        Assert.Contains("not mapped: fetchlimit 3", dry.Stdout);
        Assert.Contains("imap.invalid: would be created", dry.Stdout);
        Assert.Contains("folders Work", dry.Stdout);
        // fetchmail's IMAP record is the \Seen flag it set on what it fetched: read from the server, read-only.
        Assert.Contains($"seen: 1 messages of folder Work (UIDVALIDITY ", dry.Stdout);
        Assert.Contains($"imap://127.0.0.1:{Dovecot.ImapPort}/Work (\\Seen flags, read now)", dry.Stdout);
        Assert.Contains("nothing was written", dry.Stdout);
        Assert.DoesNotContain("pa\"ss", dry.Stdout + dry.Stderr, StringComparison.Ordinal);
        Assert.Empty(await AccountNamesAsync());
        Assert.False(Directory.Exists(Secrets));

        var run = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc, "--state", fetchids);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("127.0.0.1: created", run.Stdout);
        Assert.DoesNotContain("pa\"ss", run.Stdout + run.Stderr, StringComparison.Ordinal);
        Assert.Equal(["127.0.0.1", "imap.invalid"], await AccountNamesAsync());
        // The inline password is in a 0600 file of the secrets directory and nowhere in the account rows.
        var secret = Path.Combine(Secrets, "127.0.0.1");
        Assert.Equal("pa\"ss w\n", await File.ReadAllTextAsync(secret));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secret));
        var rows = await CliProcess.RunAsync(Env, "account", "list", "--json");
        Assert.Contains("file:" + secret, rows.Stdout);
        Assert.DoesNotContain("pa\\u0022ss", rows.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("imap-pw\"", rows.Stdout, StringComparison.Ordinal);

        var again = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc, "--state", fetchids);
        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        Assert.Contains("127.0.0.1: exists already", again.Stdout);
        Assert.Contains("imap.invalid: exists already", again.Stdout);
        Assert.Contains("seen: not read again (the account exists; its record is the server's IMAP \\Seen flags)", again.Stdout);
        Assert.DoesNotContain("does not exist", again.Stdout, StringComparison.Ordinal);
        Assert.Equal(["127.0.0.1", "imap.invalid"], await AccountNamesAsync());

        // Only what fetchmail left unfetched and what came later: in POP3 by its .fetchids, in the IMAP folder by \Seen.
        await PullAndVerifyAsync("fmbox", ["127.0.0.1", "imap.invalid"], "fetchmail 4", "fetchmail 5", "fetchmail 6 (new)", "fetchmail work 2");
    }

    [Fact]
    public async Task Import_from_mpop_follows_defaults_and_inheritance_and_the_first_pull_fetches_only_new_mail()
    {
        Dovecot.AddUser("mp", "mp-pw");
        Dovecot.AddUser("mp2", "second pw");
        Dovecot.AddUser("mp3", "third-pw");
        for (var i = 1; i <= 3; i++)
        {
            Deliver("mp", $"mpop {i}");
            Deliver("mp2", $"mpop second {i}");
        }
        Deliver("mp3", "mpop third 1");
        var dir = Dir("mpop");
        var maildir = Maildir(dir);
        var rc = Path.Combine(dir, "mpoprc");
        await WritePrivateAsync(rc, $"""
            # mpop's manual, shortened: defaults, an account, one that inherits from it
            defaults
            tls off
            keep on
            uidls_file {dir}/uidls_%U_at_%H
            delivery maildir {maildir}

            account first
            host 127.0.0.1
            port {Dovecot.Pop3Port}
            user mp
            auth user
            password mp-pw

            account second : first
            user mp2
            password "second pw"

            account third
            host 127.0.0.1
            port {Dovecot.Pop3Port}
            user mp3
            auth user
            passwordeval echo third-pw

            account default : first
            """);
        var mpop = await ToolAsync("mpop", [], "--file=" + rc, "--quiet", "first", "second", "third");
        Assert.True(mpop.ExitCode == 0, mpop.Output);
        Assert.Equal(7, Directory.GetFiles(Path.Combine(maildir, "new")).Length);
        Deliver("mp", "mpop 4 (new)");
        Deliver("mp2", "mpop second 4 (new)");
        Deliver("mp3", "mpop third 2 (new)");

        var noMailbox = await CliProcess.RunAsync(Env, "account", "import", "--from", "mpop", rc);
        Assert.Equal(2, noMailbox.ExitCode);
        Assert.Contains("give one with --mailbox", noMailbox.Stderr);

        var dry = await CliProcess.RunAsync(Env, "account", "import", "--from", "mpop", rc, "--mailbox", "mpbox", "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stdout + dry.Stderr);
        Assert.Contains($"second: would be created", dry.Stdout);
        Assert.Contains($"Pop3 127.0.0.1:{Dovecot.Pop3Port} (None) user mp2 → mailbox mpbox, leave keep", dry.Stdout);
        Assert.Contains($"seen: 3 messages from {dir}/uidls_mp2_at_127.0.0.1", dry.Stdout);
        Assert.Contains("not mapped: delivery maildir", dry.Stdout);
        // passwordeval is not run: the account names a variable, and the output says why and what to do.
        Assert.Contains("password: env:CLOUDSPOOL_SECRET_THIRD: not taken over: ", dry.Stdout);
        Assert.Contains("runs a command for it (echo third-pw), and CloudSpool runs no command a stored account names", dry.Stdout);
        Assert.Empty(await AccountNamesAsync());

        var run = await CliProcess.RunAsync(Env, "account", "import", "--from", "mpop", rc, "--mailbox", "mpbox");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal("second pw\n", await File.ReadAllTextAsync(Path.Combine(Secrets, "second")));
        Assert.Equal(["first", "second", "third"], await AccountNamesAsync());

        _extraEnv["CLOUDSPOOL_SECRET_THIRD"] = "third-pw";
        await PullAndVerifyAsync("mpbox", ["first", "second", "third"], "mpop 4 (new)", "mpop second 4 (new)", "mpop third 2 (new)");
    }

    [Fact]
    public async Task Import_from_getmail_reads_its_oldmail_files_for_pop3_and_imap_folders()
    {
        Dovecot.AddUser("gm", "gm-pw");
        Dovecot.AddUser("gmi", "gmi-pw");
        for (var i = 1; i <= 4; i++)
            Deliver("gm", $"getmail {i}");
        Deliver("gmi", "getmail inbox 1");
        Deliver("gmi", "getmail inbox 2");
        Deliver("gmi", "getmail work 1", "Work");
        Deliver("gmi", "getmail work 2", "Work");
        // getmail delivers over LMTP: its maildir delivery forks a child per message and can miss that child's exit
        // (its SIGCHLD handler is installed after the fork), then waits out its 180 s timeout (getmail6 issue #226).
        await using var lmtp = await SmtpSinkServer.StartLmtpAsync();
        var dir = Dir("getmail");
        var pop = Path.Combine(dir, "getmailrc-gm");
        await File.WriteAllTextAsync(pop, $"""
            [retriever]
            type = SimplePOP3Retriever
            server = 127.0.0.1
            port = {Dovecot.Pop3Port}
            username = gm
            password = gm-pw

            [destination]
            type = MDA_lmtp
            host = 127.0.0.1
            port = {lmtp.Port}
            override = old-tool@localhost

            [options]
            read_all = false
            delete = false
            max_messages_per_session = 2
            """);
        var imap = Path.Combine(dir, "getmailrc-gmi");
        await File.WriteAllTextAsync(imap, $"""
            [retriever]
            type = SimpleIMAPRetriever
            server = 127.0.0.1
            port = {Dovecot.ImapPort}
            username = gmi
            password = gmi-pw
            mailboxes = ("INBOX",
                         "Work")

            [destination]
            type = MDA_lmtp
            host = 127.0.0.1
            port = {lmtp.Port}
            override = old-tool@localhost

            [options]
            read_all = false
            max_messages_per_session = 3
            """);
        foreach (var rc in new[] { pop, imap })
        {
            var getmail = await ToolAsync("getmail", ["HOME=" + dir], "--getmaildir", dir, "--rcfile", rc);
            Assert.True(getmail.ExitCode == 0, getmail.Output);
        }
        Assert.Equal(5, lmtp.Received().Count);
        Deliver("gm", "getmail 5 (new)");
        Deliver("gmi", "getmail inbox 3 (new)");

        var dry = await CliProcess.RunAsync(Env, "account", "import", "--from", "getmail", pop, imap, "--mailbox", "gmbox", "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stdout + dry.Stderr);
        Assert.Contains("gm: would be created", dry.Stdout);
        Assert.Contains($"seen: 2 messages from {dir}/oldmail-127.0.0.1-{Dovecot.Pop3Port}-gm", dry.Stdout);
        Assert.Contains("seen: 2 messages of folder INBOX (UIDVALIDITY ", dry.Stdout);
        Assert.Contains("seen: 1 messages of folder Work (UIDVALIDITY ", dry.Stdout);
        Assert.Contains("not mapped: max_messages_per_session = 2", dry.Stdout);
        Assert.Empty(await AccountNamesAsync());

        var run = await CliProcess.RunAsync(Env, "account", "import", "--from", "getmail", pop, imap, "--mailbox", "gmbox");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal(["gm", "gmi"], await AccountNamesAsync());

        await PullAndVerifyAsync("gmbox", ["gm", "gmi"], "getmail 3", "getmail 4", "getmail 5 (new)", "getmail work 2", "getmail inbox 3 (new)");
    }

    [Fact]
    public async Task Import_of_bad_input_names_the_file_and_line_and_creates_nothing()
    {
        var dir = Dir("bad");
        var rc = Path.Combine(dir, "fetchmailrc");
        await WritePrivateAsync(rc, "set daemon 60\npoll pop.example.net proto pop3\n  user u password p frobnicate\n");
        var unknown = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains($"{rc}:3: unknown keyword 'frobnicate'", unknown.Stderr);

        await WritePrivateAsync(rc, "poll pop.example.net proto ODMR user u password p\n");
        var protocol = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc);
        Assert.Equal(2, protocol.ExitCode);
        Assert.Contains($"{rc}:1: protocol 'ODMR' of poll pop.example.net: CloudSpool speaks only POP3 and IMAP", protocol.Stderr);

        var getmail = Path.Combine(dir, "getmailrc");
        await File.WriteAllTextAsync(getmail, "[retriever]\ntype = SimplePOP3Retriever\nserver = pop.example.net\nusername = u\npassword = p\n");
        var noOldmail = await CliProcess.RunAsync(Env, "account", "import", "--from", "getmail", getmail, "--mailbox", "m");
        Assert.Equal(2, noOldmail.ExitCode);
        Assert.Contains($"{dir}/oldmail-pop.example.net-110-u: the record of what getmail fetched", noOldmail.Stderr);

        Assert.Empty(await AccountNamesAsync());
        Assert.False(Directory.Exists(Secrets));
    }

    [Fact]
    public async Task Import_of_bad_input_from_each_tool_names_the_file_and_line_and_creates_nothing_even_for_its_good_accounts()
    {
        var dir = Dir("bad-each");
        var rc = Path.Combine(dir, "rc");
        var good = Path.Combine(dir, "getmailrc-good");
        var bad = Path.Combine(dir, "getmailrc-bad");
        // Each configuration starts with an account that is fine (its inline password would become a secret file).
        const string fetchmailGood = "poll good.example.net proto pop3 user g password 'good-secret-77' is m here nokeep\n";
        const string mpopGood = "account good\nhost good.example.net\nuser g\npassword good-secret-77\n\n";
        await WritePrivateAsync(good, "[retriever]\ntype = SimplePOP3Retriever\nserver = good.example.net\nusername = g\npassword = good-secret-77\n[options]\ndelete = true\n");
        var cases = new (string Tool, string Text, string[] Args, string Error)[]
        {
            // A syntax error.
            ("fetchmail", fetchmailGood + "poll bad proto pop3\n  user u\n  password \"open\n", [], $"{rc}:4: the string opened with \" here is never closed"),
            ("mpop", mpopGood + "account bad\nhost \"h\nuser u\n", [], $"{rc}:7: the quoted argument is never closed"),
            ("getmail", "[retriever\ntype = SimplePOP3Retriever\n", [], $"{bad}:1: '[retriever' is not a section header"),
            // An unknown keyword.
            ("fetchmail", fetchmailGood + "poll bad proto pop3 user u frobnicate\n", [], $"{rc}:2: unknown keyword 'frobnicate'"),
            ("mpop", mpopGood + "account bad\nhost h\nuser u\nfrobnicate on\n", [], $"{rc}:9: unknown command 'frobnicate'"),
            ("getmail", "[retriever]\ntype = SimplePOP3Retriever\nserver = s\nusername = u\ncolour = blue\n", [], $"{bad}:5: unknown key 'colour' in [retriever]"),
            // What CloudSpool does not speak (mpop speaks only POP3: its nearest case is a login CloudSpool does not offer).
            ("fetchmail", fetchmailGood + "poll bad proto ETRN user u\n", [], $"{rc}:2: protocol 'ETRN' of poll bad: CloudSpool speaks only POP3 and IMAP"),
            ("mpop", mpopGood + "account bad\nhost h\nuser u\nauth digest-md5\n", [], $"{rc}:9: authentication 'digest-md5' is not one CloudSpool offers"),
            ("getmail", "[retriever]\ntype = SimpleSPDSRetriever\nserver = s\nusername = u\n", [], $"{bad}:2: retriever type 'SimpleSPDSRetriever': CloudSpool follows"),
            // A missing record of fetched mail, where the tool kept mail on the server.
            ("fetchmail", fetchmailGood + "poll bad proto pop3 user u password 'p' is m here keep\n", ["--state", Path.Combine(dir, "no-fetchids")],
                $"{dir}/no-fetchids: the record of what fetchmail fetched for bad ({rc}:2) does not exist"),
            ("mpop", mpopGood + $"account bad\nhost h\nuser u\nkeep on\nuidls_file {dir}/no-uidls\n", [],
                $"{dir}/no-uidls: the record of what mpop fetched for bad ({rc}:6) does not exist"),
            ("getmail", "[retriever]\ntype = SimplePOP3Retriever\nserver = s\nusername = u\npassword = p\n", [],
                $"{dir}/oldmail-s-110-u: the record of what getmail fetched for getmailrc-bad ({bad}:2) does not exist"),
        };
        foreach (var (tool, text, args, error) in cases)
        {
            var getmail = tool == "getmail";
            await WritePrivateAsync(getmail ? bad : rc, text);
            var import = await CliProcess.RunAsync(Env, ["account", "import", "--from", tool, .. getmail ? new[] { good, bad } : [rc], "--mailbox", "m", .. args]);
            Assert.True(import.ExitCode == 2, $"{tool}: {error}\n{import.Stdout}{import.Stderr}");
            Assert.True(import.Stderr.Contains(error, StringComparison.Ordinal), $"{tool}: expected '{error}' in:\n{import.Stderr}");
            Assert.Contains("nothing was imported", import.Stderr);
            Assert.DoesNotContain("good-secret-77", import.Stdout + import.Stderr, StringComparison.Ordinal);
        }
        Assert.Empty(await AccountNamesAsync());
        Assert.False(Directory.Exists(Secrets));
    }

    [Fact]
    public async Task Import_runs_no_password_command_and_names_the_variable_that_takes_its_place()
    {
        var dir = Dir("password-command");
        var (rc, ran) = (Path.Combine(dir, "getmailrc-cmd"), Path.Combine(dir, "ran")); // the command would create "ran"
        await WritePrivateAsync(rc, $"[retriever]\ntype = SimplePOP3SSLRetriever\nserver = pop.example.net\nusername = u\npassword_command = (\"/usr/bin/touch\", \"{ran}\")\n[options]\ndelete = true\n");
        foreach (var dry in new[] { true, false })
        {
            var import = await CliProcess.RunAsync(Env, ["account", "import", "--from", "getmail", rc, "--mailbox", "m", .. dry ? new[] { "--dry-run" } : []]);
            Assert.True(import.ExitCode == 0, import.Stdout + import.Stderr);
            Assert.Contains($"password: env:CLOUDSPOOL_SECRET_CMD: not taken over: {rc}:5 runs a command for it (/usr/bin/touch {ran}), and CloudSpool runs no command a stored account names", import.Stdout);
            Assert.Contains("export CLOUDSPOOL_SECRET_CMD=", import.Stdout);
            Assert.False(File.Exists(ran));
        }
        var rows = await CliProcess.RunAsync(Env, "account", "list", "--json");
        Assert.Contains("\"passwordRef\": \"env:CLOUDSPOOL_SECRET_CMD\"", rows.Stdout);
        Assert.DoesNotContain("touch", rows.Stdout, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Secrets));
    }

    /// <summary>The command's standard output without its last line (the totals, which differ between a dry and a real run).</summary>
    private static string[] PlanLines(string stdout) => stdout.TrimEnd('\n').Split('\n')[..^1];

    [Fact]
    public async Task Dry_run_creates_no_table_container_or_secret_and_prints_the_plan_the_real_run_carries_out()
    {
        Dovecot.AddUser("dr", "dr-pw");
        Deliver("dr", "dry 1");
        var dir = Dir("dry");
        var rc = Path.Combine(dir, "fetchmailrc");
        // nokeep: fetchmail deleted what it fetched, so no .fetchids is needed to plan it.
        await WritePrivateAsync(rc, $"poll 127.0.0.1 proto pop3 port {Dovecot.Pop3Port} user dr password 'dr-pw' is drbox here nokeep sslproto ''\n");
        // A store never written to under this prefix: the dry run must leave it so.
        var prefix = SharedAzurite.NewPrefix();
        var env = new Dictionary<string, string>(Env) { ["CLOUDSPOOL__Storage__NamePrefix"] = prefix };

        var dry = await CliProcess.RunAsync(env, "account", "import", "--from", "fetchmail", rc, "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stdout + dry.Stderr);
        Assert.Contains("127.0.0.1: would be created", dry.Stdout);
        Assert.Contains("nothing was written", dry.Stdout);
        var tables = new Azure.Data.Tables.TableServiceClient(Spool.ConnectionString);
        var blobs = new Azure.Storage.Blobs.BlobServiceClient(Spool.ConnectionString);
        async Task<List<string>> StoreNamesAsync()
        {
            var names = new List<string>();
            await foreach (var t in tables.QueryAsync())
                if (t.Name.StartsWith(prefix, StringComparison.Ordinal))
                    names.Add(t.Name);
            await foreach (var c in blobs.GetBlobContainersAsync(prefix: prefix))
                names.Add(c.Name);
            return names;
        }
        Assert.Empty(await StoreNamesAsync());
        Assert.False(Directory.Exists(Secrets));

        var run = await CliProcess.RunAsync(env, "account", "import", "--from", "fetchmail", rc);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Equal(PlanLines(dry.Stdout).Select(l => l.Replace(": would be created", ": created", StringComparison.Ordinal)), PlanLines(run.Stdout));
        Assert.NotEmpty(await StoreNamesAsync());
        Assert.True(File.Exists(Path.Combine(Secrets, "127.0.0.1")));

        // Against the store the real run wrote, a dry run reads it: the account exists, and it still writes nothing.
        var after = await CliProcess.RunAsync(env, "account", "import", "--from", "fetchmail", rc, "--dry-run");
        Assert.True(after.ExitCode == 0, after.Stdout + after.Stderr);
        Assert.Contains("127.0.0.1: exists already", after.Stdout);
        Assert.Contains("0 accounts would be created, 1 exist already", after.Stdout);

        // The real run again: the same plan, the account left as it is, nothing written twice.
        var secret = await File.ReadAllTextAsync(Path.Combine(Secrets, "127.0.0.1"));
        var again = await CliProcess.RunAsync(env, "account", "import", "--from", "fetchmail", rc);
        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        Assert.Equal(PlanLines(run.Stdout).Select(l => l.Replace(": created", ": exists already: left as it is, nothing imported again", StringComparison.Ordinal)), PlanLines(again.Stdout));
        Assert.Contains("imported 0 accounts; 1 existed already", again.Stdout);
        Assert.Equal(secret, await File.ReadAllTextAsync(Path.Combine(Secrets, "127.0.0.1")));
        Assert.Equal(["127.0.0.1"], await AccountNamesOfAsync(env));
        var pull = await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "127.0.0.1");
        Assert.True(pull.ExitCode == 0, pull.Stdout + pull.Stderr);
        var spool = await CliProcess.RunAsync(env, "messages", "list", "--mailbox", "drbox");
        Assert.True(spool.ExitCode == 0, spool.Stdout + spool.Stderr);
        Assert.Single(spool.Stdout.Split('\n'), l => l.EndsWith("| dry 1", StringComparison.Ordinal));
        Assert.Contains("\n1 messages", spool.Stdout);
    }

    [Fact]
    public async Task Dry_run_without_a_storage_account_starts_no_embedded_store_that_was_never_started()
    {
        var dir = Dir("dry-embedded");
        var rc = Path.Combine(dir, "fetchmailrc");
        await WritePrivateAsync(rc, "poll pop.example.net proto pop3 user u password 'p' is m here nokeep\n");
        var location = Path.Combine(dir, "azurite-data");
        var env = new Dictionary<string, string>(Env)
        {
            ["CLOUDSPOOL__Storage__ConnectionString"] = "",
            ["CLOUDSPOOL__Storage__NamePrefix"] = "",
            ["CLOUDSPOOL__Storage__Azurite__Location"] = location,
        };
        var dry = await CliProcess.RunAsync(env, "account", "import", "--from", "fetchmail", rc, "--dry-run");
        Assert.True(dry.ExitCode == 0, dry.Stdout + dry.Stderr);
        Assert.Contains("pop.example.net: would be created", dry.Stdout);
        Assert.False(Directory.Exists(location));
        Assert.False(Directory.Exists(Secrets));
    }

    [Fact]
    public async Task Import_that_cannot_read_the_imap_seen_flags_names_the_account_and_reason_creates_nothing_and_a_rerun_completes()
    {
        Dovecot.AddUser("fs", "fs-pw");
        Deliver("fs", "seen work 1", "Work");
        Deliver("fs", "seen work 2", "Work");
        var dir = Dir("imap-seen");
        var rc = Path.Combine(dir, "fetchmailrc");
        string Rc(string password, int port) =>
            $"poll imapwork via 127.0.0.1 proto IMAP port {port} user fs {password} is fsbox here folder Work keep fetchlimit 1 sslproto '' mda \"cat > {dir}/got.$$\"\n";
        await WritePrivateAsync(rc, Rc("password 'fs-pw'", Dovecot.ImapPort));
        var fetchmail = await ToolAsync("fetchmail", ["FETCHMAILHOME=" + dir], "-d0", "--nosyslog", "-f", rc);
        Assert.True(fetchmail.ExitCode is 0 or 13, fetchmail.Output);
        Deliver("fs", "seen work 3 (new)", "Work");

        async Task RefusedAsync(string reason)
        {
            foreach (var dry in new[] { true, false })
            {
                var import = await CliProcess.RunAsync(Env, ["account", "import", "--from", "fetchmail", rc, .. dry ? new[] { "--dry-run" } : []]);
                Assert.True(import.ExitCode == 1, import.Stdout + import.Stderr);
                Assert.Contains($"imapwork from {rc}:1: its record of fetched mail is the server's (IMAP \\Seen flags), which the import reads: ", import.Stderr);
                Assert.True(import.Stderr.Contains(reason, StringComparison.Ordinal), import.Stderr);
                Assert.Contains("nothing was imported", import.Stderr);
                Assert.Empty(await AccountNamesAsync());
                Assert.False(Directory.Exists(Secrets));
            }
        }

        // No password in the configuration and its variable not set.
        await WritePrivateAsync(rc, Rc("", Dovecot.ImapPort));
        await RefusedAsync("CLOUDSPOOL_SECRET_IMAPWORK");
        // The server refuses the password.
        await WritePrivateAsync(rc, Rc("password 'wrong'", Dovecot.ImapPort));
        await RefusedAsync("127.0.0.1 refused the login: Authentication failed");
        // Nothing listens on the port.
        var closed = CloudSpool.Host.Azurite.EmbeddedAzurite.FreePort();
        await WritePrivateAsync(rc, Rc("password 'fs-pw'", closed));
        await RefusedAsync($"cannot connect to 127.0.0.1:{closed}: Connection refused");

        // The cause fixed (the variable set), the same command completes the import.
        await WritePrivateAsync(rc, Rc("", Dovecot.ImapPort));
        _extraEnv["CLOUDSPOOL_SECRET_IMAPWORK"] = "fs-pw";
        var run = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc);
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("seen: 1 messages of folder Work", run.Stdout);
        await PullAndVerifyAsync("fsbox", ["imapwork"], "seen work 2", "seen work 3 (new)");
    }

    /// <summary>
    /// Imports a fetchmail configuration whose record holds two UIDLs, then pulls from its server, which offers no UIDL:
    /// the pull is refused, saying why. Returns what the pull printed.
    /// </summary>
    private async Task<string> ImportTwoUidlsAndPullRefusedAsync(string rc, string fetchids)
    {
        var import = await CliProcess.RunAsync(Env, "account", "import", "--from", "fetchmail", rc, "--state", fetchids);
        Assert.True(import.ExitCode == 0, import.Stdout + import.Stderr);
        Assert.Contains("seen: 2 messages", import.Stdout);

        var pull = await CliProcess.RunAsync(Env, "job", "run", "pull", "--account", "127.0.0.1");
        Assert.True(pull.ExitCode == 1, pull.Stdout + pull.Stderr);
        Assert.Contains("127.0.0.1 offers no UIDL, but 2 messages are recorded by their UIDL as fetched before", pull.Stdout + pull.Stderr);
        return pull.Stdout + pull.Stderr;
    }

    [Fact]
    public async Task Pull_of_imported_uidls_from_a_pop3_server_without_uidl_fetches_and_deletes_nothing_and_says_why()
    {
        // Dovecot always offers UIDL: a scripted server that answers UIDL with -ERR (keys become header hashes).
        var messages = new[] { TestMail.Create("old 1"), TestMail.Create("old 2"), TestMail.Create("new 3") };
        await using var server = new ScriptedPop3Server(ScriptedPop3Server.Mailbox(messages, capabilities: "USER\r\nTOP\r\nPIPELINING\r\n",
            overrides: c => c == "UIDL" ? "-ERR no UIDL here\r\n" : null));
        var dir = Dir("no-uidl");
        var rc = Path.Combine(dir, "fetchmailrc");
        await WritePrivateAsync(rc, $"poll 127.0.0.1 proto pop3 port {server.Port} user nu password 'p' is nubox here nokeep sslproto ''\n");
        var fetchids = Path.Combine(dir, "fetchids");
        await File.WriteAllTextAsync(fetchids, "nu@127.0.0.1 uid1\nnu@127.0.0.1 uid2\n");
        await ImportTwoUidlsAndPullRefusedAsync(rc, fetchids);
        Assert.Empty(await Spool.ListAsync("nubox"));
        Assert.DoesNotContain(server.Received, c => c.StartsWith("RETR", StringComparison.Ordinal) || c.StartsWith("DELE", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Pull_refused_for_lack_of_uidl_is_remedied_as_its_message_says_by_an_account_under_another_name_with_first_run_skip()
    {
        Dovecot.AddUser("nu", "nu-pw");
        for (var i = 1; i <= 3; i++)
            Deliver("nu", $"no-uidl {i}");
        // Dovecot always offers UIDL: in front of it, a proxy that can make UIDL an unknown command (keys become header hashes).
        await using var proxy = new CuttingProxy(Dovecot.Pop3Port);
        var received = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var dir = Dir("no-uidl-remedy");
        var rc = Path.Combine(dir, "fetchmailrc");
        await WritePrivateAsync(rc, $"poll 127.0.0.1 proto pop3 port {proxy.Port} user nu password 'nu-pw' is nubox here keep fetchlimit 2 sslproto '' mda \"cat > {dir}/got.$$\"\n");
        var fetchids = Path.Combine(dir, "fetchids");
        var fetchmail = await ToolAsync("fetchmail", ["FETCHMAILHOME=" + dir], "-d0", "--nosyslog", "-f", rc, "-i", fetchids);
        Assert.True(fetchmail.ExitCode is 0 or 13, fetchmail.Output);
        Assert.Equal(2, File.ReadAllLines(fetchids).Length);

        // The server stops offering UIDL; the import records what fetchmail fetched under their UIDLs.
        proxy.RewriteCommand = command =>
        {
            received.Enqueue(command);
            return command.Equals("UIDL", StringComparison.OrdinalIgnoreCase) ? "XUIDL" : command;
        };
        var refused = await ImportTwoUidlsAndPullRefusedAsync(rc, fetchids);
        Assert.Contains("`account add` the account under another name with --first-run skip", refused);
        Assert.Contains("and `account remove 127.0.0.1`", refused);
        Assert.Contains("UIDL", received); // the pull did ask, and the server refused it

        // The remedy, as a user follows it: the same server, user and password file, under another name, first run skip.
        var list = await CliProcess.RunAsync(Env, "account", "list", "--json");
        using (var accounts = JsonDocument.Parse(list.Stdout))
        {
            var passwordRef = accounts.RootElement.EnumerateArray().Single().GetProperty("passwordRef").GetString()!;
            var add = await CliProcess.RunAsync(Env, "account", "add", "isp", "--protocol", "pop3", "--host", "127.0.0.1", "--port", proxy.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "--tls", "none", "--user", "nu", "--password-ref", passwordRef, "--mailbox", "nubox", "--first-run", "skip");
            Assert.True(add.ExitCode == 0, add.Stdout + add.Stderr);
        }
        var first = await CliProcess.RunAsync(Env, "job", "run", "pull", "--account", "isp");
        Assert.True(first.ExitCode == 0, first.Stdout + first.Stderr);
        Assert.Empty(await Spool.ListAsync("nubox"));

        // The refused account still refuses: its ledger holds only UIDLs, whatever the new account recorded.
        var again = await CliProcess.RunAsync(Env, "job", "run", "pull", "--account", "127.0.0.1");
        Assert.True(again.ExitCode == 1, again.Stdout + again.Stderr);
        Assert.Contains("offers no UIDL", again.Stdout + again.Stderr);
        var remove = await CliProcess.RunAsync(Env, "account", "remove", "127.0.0.1");
        Assert.True(remove.ExitCode == 0, remove.Stdout + remove.Stderr);

        // Mail that arrives now is fetched, byte for byte; nothing that was there before, and nothing is deleted upstream.
        Deliver("nu", "no-uidl 4 (new)");
        await PullAndVerifyAsync("nubox", ["isp"], "no-uidl 4 (new)");
        await PullAndVerifyAsync("nubox", ["isp"], "no-uidl 4 (new)");
        Assert.Equal(["RETR 4"], received.Where(c => c.StartsWith("RETR", StringComparison.OrdinalIgnoreCase) || c.StartsWith("DELE", StringComparison.OrdinalIgnoreCase)));
        Assert.Equal(4, await UpstreamProbe.CountAsync(Dovecot, "nu", "nu-pw"));
        Assert.Equal(["isp"], await AccountNamesAsync());
    }
}
