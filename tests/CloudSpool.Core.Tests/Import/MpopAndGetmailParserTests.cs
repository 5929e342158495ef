using CloudSpool.Core.Accounts;
using CloudSpool.Core.Import;

namespace CloudSpool.Core.Tests.Import;

public sealed class MpopAndGetmailParserTests
{
    private const string Home = "/home/alice";

    [Fact]
    public void Import_mpop_fills_in_defaults_then_inherits_from_the_accounts_named()
    {
        var accounts = MpopConfigParser.Parse("""
            # mpop's manual, shortened
            defaults
            tls on
            keep on
            uidls_file ~/.local/share/%U_at_%H

            account freemail
            host pop.freemail.example
            user joe.smith
            passwordeval gpg --no-tty -q -d ~/.mpop-password.gpg
            delivery mda "/usr/bin/procmail -f '%F' -d $USER"

            account company : freemail
            host "mail.company.example"
            tls_starttls off
            keep
            only_new off
            password "secret with spaces"

            account default : freemail
            """, "/home/alice/.mpoprc", Home);

        Assert.Equal(["freemail", "company"], accounts.Select(a => a.Name));
        var free = accounts[0];
        Assert.Equal((UpstreamProtocol.Pop3, "pop.freemail.example", TlsMode.StartTls, "joe.smith", true), (free.Protocol, free.Host, free.Tls, free.Username, free.Leave.KeepsEverything));
        Assert.Equal(new ImportedPassword(PasswordSource.Command, "gpg --no-tty -q -d ~/.mpop-password.gpg", 10), free.Password);
        var seen = Assert.Single(free.Seen);
        Assert.Equal((SeenFormat.MpopUidls, "/home/alice/.local/share/joe.smith_at_pop.freemail.example", "pop.freemail.example joe.smith"), (seen.Format, seen.Path, seen.Owners[0]));
        Assert.Contains(free.Notes, n => n.Setting.StartsWith("delivery mda", StringComparison.Ordinal) && n.Line == 11);

        var company = accounts[1];
        Assert.Equal(("mail.company.example", TlsMode.Implicit, "joe.smith"), (company.Host, company.Tls, company.Username));
        Assert.Equal(new ImportedPassword(PasswordSource.Inline, "secret with spaces", 18), company.Password); // a password wins over passwordeval, as in mpop
        Assert.Contains(company.Notes, n => n.Setting == "only_new off");
        Assert.Equal("/home/alice/.local/share/joe.smith_at_mail.company.example", company.Seen[0].Path);
    }

    [Theory]
    [InlineData("account a\nhost h\nuser u\nfrobnicate on", 4, "unknown command 'frobnicate'")]
    [InlineData("account a : b\nhost h", 1, "inherits from 'b', which is not defined before it")]
    [InlineData("account a\nhost h\nuser u\nkeep maybe", 4, "'keep' takes on or off")]
    [InlineData("account a\nhost \"h\nuser u", 2, "never closed")]
    [InlineData("account a\nuser u", 1, "has no host")]
    [InlineData("defaults\ntls on", 0, "no account")]
    public void Import_mpop_refuses_bad_input_naming_the_line(string text, int line, string reason)
    {
        var ex = Assert.Throws<ImportException>(() => MpopConfigParser.Parse(text, "/c", Home));
        Assert.Equal(("/c", line), (ex.File, ex.Line));
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Import_getmail_maps_retrievers_mailboxes_and_options()
    {
        var imap = GetmailRcParser.Parse("""
            [retriever]
            type = SimpleIMAPSSLRetriever
            server = imap.example.net
            username = jeff.plotzky
            password_command = ("/usr/bin/pass", "show", 'mail/imap')
            mailboxes = ("INBOX", "INBOX.spam",
                "Lists/dev")

            [destination]
            type = Maildir
            path = ~/Maildir/

            [options]
            read_all = false
            delete_after = 30
            ; a comment
            """, "/home/alice/.getmail/getmailrc-work");

        Assert.Equal(("work", UpstreamProtocol.Imap, TlsMode.Implicit, 0, "jeff.plotzky"), (imap.Name, imap.Protocol, imap.Tls, imap.Port, imap.Username));
        Assert.Equal(["INBOX", "INBOX.spam", "Lists/dev"], imap.Folders);
        Assert.Equal(30, imap.Leave.DeleteAfterDays);
        Assert.Equal(new ImportedPassword(PasswordSource.Command, "/usr/bin/pass show mail/imap", 5), imap.Password);
        Assert.Equal(["/home/alice/.getmail/oldmail-imap.example.net-993-jeff.plotzky-INBOX", "/home/alice/.getmail/oldmail-imap.example.net-993-jeff.plotzky-INBOX.spam",
            "/home/alice/.getmail/oldmail-imap.example.net-993-jeff.plotzky-Lists.dev"], imap.Seen.Select(s => s.Path));
        Assert.Equal(["INBOX", "INBOX.spam", "Lists/dev"], imap.Seen.Select(s => s.Scope));
        Assert.Contains(imap.Notes, n => n.Setting == "[destination] Maildir");
        Assert.DoesNotContain(imap.Notes, n => n.Setting.StartsWith("read_all", StringComparison.Ordinal));

        var pop = GetmailRcParser.Parse("[retriever]\ntype = MultidropPOP3Retriever\nserver = pop.example.net\nport = 1110\nusername = u\npassword = p w\nenvelope_recipient = delivered-to:1\n[options]\ndelete = true\n",
            "/rc/getmailrc", "/var/getmail");
        Assert.Equal(("u-pop.example.net", TlsMode.None, 1110, true), (pop.Name, pop.Tls, pop.Port, pop.Leave.DeleteWhenStored));
        Assert.Equal(new ImportedPassword(PasswordSource.Inline, "p w", 6), pop.Password);
        Assert.Equal("/var/getmail/oldmail-pop.example.net-1110-u", Assert.Single(pop.Seen).Path);
        Assert.False(pop.Seen[0].Required);
        Assert.Contains(pop.Notes, n => n.Setting.StartsWith("envelope_recipient", StringComparison.Ordinal) && n.Reason.Contains("multidrop", StringComparison.Ordinal));
        Assert.Contains(pop.Notes, n => n.Setting.StartsWith("read_all", StringComparison.Ordinal));

        // BrokenUIDL: getmail keeps no record (it cannot tell messages apart across sessions): nothing to import, said so.
        var broken = GetmailRcParser.Parse("[retriever]\ntype = BrokenUIDLPOP3SSLRetriever\nserver = s\nusername = u\n", "/rc/getmailrc");
        Assert.Equal((TlsMode.Implicit, 0), (broken.Tls, broken.Seen.Count));
        Assert.Contains(broken.Notes, n => n.Reason.Contains("keeps no record", StringComparison.Ordinal) && n.Line == 2);
    }

    [Theory]
    [InlineData("[retriever]\ntype = MultidropSDPSRetriever\nserver = s\nusername = u", 2, "retriever type 'MultidropSDPSRetriever'")]
    [InlineData("[retriever]\ntype = SimplePOP3Retriever\nserver = s\nusername = u\ncolour = blue", 5, "unknown key 'colour' in [retriever]")]
    [InlineData("[retriever]\ntype = SimplePOP3Retriever\nserver = s\nusername = u\n[options]\ndelete = perhaps", 6, "'delete' takes true or false")]
    [InlineData("[retriever]\ntype = SimpleIMAPRetriever\nserver = s\nusername = u\nmailboxes = ALL", 5, "mailboxes = ALL")]
    [InlineData("[retriever\ntype = x", 1, "not a section header")]
    [InlineData("type = x", 1, "a setting before any [section]")]
    [InlineData("[retriever]\ntype = SimplePOP3Retriever\nserver = s\nusername = u\n[colours]\nred = 1", 5, "unknown section [colours]")]
    public void Import_getmail_refuses_bad_input_naming_the_line(string text, int line, string reason)
    {
        var ex = Assert.Throws<ImportException>(() => GetmailRcParser.Parse(text, "/rc/getmailrc"));
        Assert.Equal(("/rc/getmailrc", line), (ex.File, ex.Line));
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }
}
