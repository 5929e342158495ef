using CloudSpool.Core.Accounts;
using CloudSpool.Core.Import;

namespace CloudSpool.Core.Tests.Import;

public sealed class FetchmailrcParserTests
{
    private const string Home = "/home/alice";
    private const string File = "/home/alice/.fetchmailrc";

    private static IReadOnlyList<ImportedAccount> Parse(string text, string? idFile = null) => FetchmailrcParser.Parse(text, File, Home, idFile);

    [Fact]
    public void Import_reads_the_manual_s_examples_with_noise_words_quoted_strings_and_several_users()
    {
        var accounts = Parse("""
            # fetchmail's manual, with the awkward parts
            set daemon 300
            set logfile "/var/log/fetchmail.log"
            defaults proto pop3 keep
            poll pop.provider.net with proto POP3 port 995 and options
                user "jsmith" there with password 'se"cr et' is jsmith here ssl sslcertck
                user 'root', with pass 'x#y' is "bob" here nokeep, fetchall
            poll imap.example.org via 10.0.0.2 protocol IMAP,
                user jsmith is jsmith here password "p w"; folder INBOX, "Lists/dev" mda "/usr/bin/procmail -d %T" smtphost localhost
            """);

        Assert.Equal(3, accounts.Count);
        var first = accounts[0];
        Assert.Equal("jsmith@pop.provider.net", first.Label);
        Assert.Equal("jsmith-pop.provider.net", first.Name);
        Assert.Equal((UpstreamProtocol.Pop3, "pop.provider.net", 995, TlsMode.Implicit, "jsmith"), (first.Protocol, first.Host, first.Port, first.Tls, first.Username));
        Assert.Equal("jsmith", first.LocalUser);
        Assert.Equal(new ImportedPassword(PasswordSource.Inline, "se\"cr et", 6), first.Password);
        Assert.True(first.Leave.KeepsEverything);
        Assert.Equal("0 */5 * * * ?", first.Schedule);
        var seen = Assert.Single(first.Seen);
        Assert.Equal((SeenFormat.Fetchids, "/home/alice/.fetchids", "", true), (seen.Format, seen.Path, seen.Scope, seen.Required));
        Assert.Contains("jsmith@pop.provider.net", seen.Owners);

        var second = accounts[1];
        Assert.Equal(("root", "bob", "x#y"), (second.Username, second.LocalUser, second.Password.Value));
        Assert.True(second.Leave.DeleteWhenStored);
        Assert.Contains(second.Notes, n => n.Setting == "fetchall" && n.Line == 7);
        Assert.False(second.Seen[0].Required); // it deletes what it fetches: a missing .fetchids loses nothing

        var imap = accounts[2];
        Assert.Equal(("imap.example.org", UpstreamProtocol.Imap, "10.0.0.2", TlsMode.StartTls), (imap.Label, imap.Protocol, imap.Host, imap.Tls));
        Assert.Equal(["INBOX", "Lists/dev"], imap.Folders);
        Assert.True(imap.Leave.KeepsEverything); // the defaults' keep
        // fetchmail keeps no IMAP record: it is the server's \Seen flags, one folder each.
        Assert.Equal([(SeenFormat.ImapSeenFlag, "INBOX"), (SeenFormat.ImapSeenFlag, "Lists/dev")], imap.Seen.Select(s => (s.Format, s.Scope)));
        Assert.Contains(imap.Notes, n => n.Setting == "mda \"/usr/bin/procmail -d %T\"" && n.Line == 9);
        Assert.Contains(imap.Notes, n => n.Setting == "smtphost localhost" && n.Line == 9);
        Assert.Contains(imap.Notes, n => n.Setting == "set logfile /var/log/fetchmail.log");
        Assert.DoesNotContain(accounts.SelectMany(a => a.Notes), n => n.Setting.Contains("se\"cr", StringComparison.Ordinal) || n.Setting.Contains("p w", StringComparison.Ordinal));
    }

    [Fact]
    public void Import_maps_tls_leave_and_schedule_as_fetchmail_meant_them()
    {
        var accounts = Parse("""
            set daemon 90
            set idfile "~/state/ids"
            poll a proto pop3 user u sslproto '' no keep
            poll b proto apop user u sslproto TLS1.2 keep no sslcertck sslcertfile /etc/ca.pem
            skip c proto pop3 service pop3s user u ssl interval 4
            poll d proto imap user u fetchall
            """);
        Assert.Equal((SeenFormat.ImapAll, "INBOX"), (accounts[3].Seen[0].Format, accounts[3].Seen[0].Scope));

        Assert.Equal([TlsMode.None, TlsMode.StartTls, TlsMode.Implicit, TlsMode.StartTls], accounts.Select(a => a.Tls));
        Assert.Equal("APOP", accounts[1].AuthMechanism);
        Assert.Equal("/etc/ca.pem", accounts[1].TrustedCertificateFile);
        Assert.Contains(accounts[1].Notes, n => n.Setting == "no sslcertck");
        Assert.True(accounts[0].Leave.DeleteWhenStored);
        Assert.Equal(995, accounts[2].Port);
        Assert.False(accounts[2].Enabled);
        Assert.Equal("0 */2 * * * ?", accounts[0].Schedule); // 90 s is no cron step: the nearest, with a note
        Assert.Contains(accounts[0].Notes, n => n.Setting == "set daemon 90" && n.Line == 1);
        Assert.Equal("0 */6 * * * ?", accounts[2].Schedule); // 4 × 90 s
        Assert.Equal("/home/alice/state/ids", accounts[0].Seen[0].Path);
        Assert.Equal("/elsewhere/ids", Parse("set idfile /x\npoll a proto pop3 user u", "/elsewhere/ids")[0].Seen[0].Path);
        Assert.Equal("/fm/.fetchids", FetchmailrcParser.Parse("poll a proto pop3 user u", File, Home, fetchmailHome: "/fm")[0].Seen[0].Path);
    }

    [Fact]
    public void Import_takes_uidl_as_what_the_pull_does_and_reads_fetchids_as_the_record()
    {
        // 'uidl' makes fetchmail track POP3 messages by UIDL in .fetchids: what every CloudSpool POP3 pull does.
        var account = Assert.Single(Parse("poll a proto pop3 user u uidl keep"));
        Assert.DoesNotContain(account.Notes, n => n.Setting.Contains("uidl", StringComparison.Ordinal));
        Assert.True(account.Leave.KeepsEverything);
        Assert.Equal((SeenFormat.Fetchids, "/home/alice/.fetchids", true), (account.Seen[0].Format, account.Seen[0].Path, account.Seen[0].Required));
    }

    [Theory]
    [InlineData("poll a proto pop3 user u frobnicate", 1, "unknown keyword 'frobnicate'")]
    [InlineData("poll a proto pop3\n  user u\n  password \"open", 3, "never closed")]
    [InlineData("set daemon 60\n\npoll a proto ETRN user u", 3, "CloudSpool speaks only POP3 and IMAP")]
    [InlineData("poll a user u", 1, "names no protocol")]
    [InlineData("user u", 1, "expected poll, skip, defaults or set")]
    [InlineData("set daemon often", 1, "'set daemon' takes the seconds")]
    [InlineData("set colour blue", 1, "unknown setting 'set colour'")]
    [InlineData("poll a proto pop3 port", 1, "expected a value after 'port'")]
    [InlineData("poll a proto pop3 user u port pop4", 1, "'pop4' is not a port")]
    public void Import_refuses_bad_input_naming_file_and_line(string text, int line, string reason)
    {
        var ex = Assert.Throws<ImportException>(() => Parse(text));
        Assert.Equal(File, ex.File);
        Assert.Equal(line, ex.Line);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        Assert.StartsWith($"{File}:{line}: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_without_a_poll_is_an_error_and_a_tokenizer_undoes_escapes()
    {
        Assert.Contains("no poll statement", Assert.Throws<ImportException>(() => Parse("set daemon 60")).Message, StringComparison.Ordinal);
        var tokens = FetchmailTokenizer.Tokenize("poll \"a\\x41\\101\\tb\" # comment\nwith options, here: user", "f");
        Assert.Equal(["poll", "aAA\tb", "user"], tokens.Select(t => t.Text));
        Assert.Equal([1, 1, 2], tokens.Select(t => t.Line));
        Assert.True(tokens[1].Quoted);
    }
}
