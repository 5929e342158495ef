using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Security;

namespace CloudSpool.IntegrationTests;

/// <summary>The pull job against a real Dovecot over IMAP and a real Azurite.</summary>
public sealed class PullImapTests : DovecotAndSpoolTest
{
    private async Task<(int Count, bool AnySeen)> FolderStateAsync(string user, string password, string folder)
    {
        using var client = new ImapClient();
        await client.ConnectAsync(Dovecot.Host, Dovecot.ImapPort, SecureSocketOptions.None);
        await client.AuthenticateAsync(user, password);
        var f = await client.GetFolderAsync(folder);
        await f.OpenAsync(FolderAccess.ReadOnly);
        var seen = f.Count > 0 && (await f.FetchAsync(0, -1, MessageSummaryItems.Flags)).Any(s => s.Flags!.Value.HasFlag(MessageFlags.Seen));
        var count = f.Count;
        await client.DisconnectAsync(true);
        return (count, seen);
    }

    [Fact]
    public async Task Imports_the_chosen_folders_byte_exact_without_marking_mail_seen()
    {
        Dovecot.AddUser("imap", "pw");
        var inbox = TestMail.Create("in inbox");
        var archived = TestMail.Create("in archive", bodyBytes: 9 * 1024 * 1024); // larger than one 4 MiB partial-fetch chunk
        Dovecot.DeliverRaw("imap", inbox);
        Dovecot.DeliverRaw("imap", archived, "Archive");
        Dovecot.DeliverRaw("imap", TestMail.Create("not chosen"), "Spam");
        var account = PullHarness.Account(Dovecot, "imap", "imap", "pw", "mona", UpstreamProtocol.Imap) with { Folders = ["INBOX", "Archive"] };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 2), (run.Outcome, run.Stored));
        var stored = await Spool.ListAsync("mona");
        Assert.Equal(["in inbox", "in archive"], stored.Select(m => m.Summary.Subject));
        Assert.Equal(inbox, await Spool.ReadRawAsync(stored[0]));
        Assert.Equal(archived, await Spool.ReadRawAsync(stored[1]));
        Assert.Equal((1, false), await FolderStateAsync("imap", "pw", "INBOX"));
        Assert.Equal(0, (await Spool.PullAsync(account)).Stored);
    }

    [Fact]
    public async Task A_uidvalidity_change_is_not_taken_as_new_mail()
    {
        Dovecot.AddUser("reset", "pw");
        for (var i = 0; i < 3; i++)
            Dovecot.DeliverRaw("reset", TestMail.Create($"before reset {i}"));
        var account = PullHarness.Account(Dovecot, "reset", "reset", "pw", "ned", UpstreamProtocol.Imap);
        Assert.Equal(3, (await Spool.PullAsync(account)).Stored);

        var oldValidity = await Spool.Runtime.Ledger.GetScopeValidityAsync("reset", "INBOX", CancellationToken.None);
        Dovecot.ResetUidValidity("reset");
        Dovecot.DeliverRaw("reset", TestMail.Create("after reset"));
        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 1, 3), (run.Outcome, run.Stored, run.Duplicates));
        Assert.Equal(4, (await Spool.ListAsync("ned")).Count);
        var third = await Spool.PullAsync(account);
        Assert.Equal((0, 0), (third.Stored, third.Duplicates));
        // The UIDs of the old validity mean nothing any more: the ledger forgot them.
        Assert.Empty(await Spool.Runtime.Ledger.LoadSeenAsync("reset", "INBOX", oldValidity!, CancellationToken.None));
        Assert.Equal(4, (await Spool.Runtime.Ledger.LoadSeenAsync("reset", "INBOX", (await Spool.Runtime.Ledger.GetScopeValidityAsync("reset", "INBOX", CancellationToken.None))!, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task Delete_policy_expunges_only_what_was_stored()
    {
        Dovecot.AddUser("drain", "pw");
        for (var i = 0; i < 4; i++)
            Dovecot.DeliverRaw("drain", TestMail.Create($"drain {i}"));
        var account = PullHarness.Account(Dovecot, "drain", "drain", "pw", "olga", UpstreamProtocol.Imap, TlsMode.StartTls) with
        {
            Leave = new LeavePolicy { DeleteWhenStored = true },
        };

        var run = await Spool.PullAsync(account);

        Assert.Equal((4, 4), (run.Stored, run.DeletedUpstream));
        Assert.Equal(0, (await FolderStateAsync("drain", "pw", "INBOX")).Count);
        Assert.Equal(4, (await Spool.ListAsync("olga")).Count);
    }

    [Fact]
    public async Task A_missing_folder_is_a_configuration_failure_naming_it()
    {
        Dovecot.AddUser("nofolder", "pw");
        var account = PullHarness.Account(Dovecot, "nofolder", "nofolder", "pw", "pat", UpstreamProtocol.Imap) with { Folders = ["Nope"] };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Configuration), (run.Outcome, run.ErrorKind));
        Assert.Contains("Nope", run.Error);
    }
}
