using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.IntegrationTests.Fixtures;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Security;

namespace CloudSpool.IntegrationTests;

/// <summary>The pull job against a real Dovecot over IMAP and a real Azurite.</summary>
public sealed class PullImapTests : IAsyncLifetime
{
    private DovecotServer _dovecot = null!;
    private PullHarness _spool = null!;

    public async Task InitializeAsync()
    {
        _dovecot = await DovecotServer.StartAsync();
        _spool = await PullHarness.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _spool.DisposeAsync();
        await _dovecot.DisposeAsync();
    }

    private async Task<(int Count, bool AnySeen)> FolderStateAsync(string user, string password, string folder)
    {
        using var client = new ImapClient();
        await client.ConnectAsync(_dovecot.Host, _dovecot.ImapPort, SecureSocketOptions.None);
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
        _dovecot.AddUser("imap", "pw");
        var inbox = TestMail.Create("in inbox");
        var archived = TestMail.Create("in archive", bodyBytes: 9 * 1024 * 1024); // larger than one 4 MiB partial-fetch chunk
        _dovecot.DeliverRaw("imap", inbox);
        _dovecot.DeliverRaw("imap", archived, "Archive");
        _dovecot.DeliverRaw("imap", TestMail.Create("not chosen"), "Spam");
        var account = PullHarness.Account(_dovecot, "imap", "imap", "pw", "mona", UpstreamProtocol.Imap) with { Folders = ["INBOX", "Archive"] };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 2), (run.Outcome, run.Stored));
        var stored = await _spool.ListAsync("mona");
        Assert.Equal(["in inbox", "in archive"], stored.Select(m => m.Summary.Subject));
        Assert.Equal(inbox, await _spool.ReadRawAsync(stored[0]));
        Assert.Equal(archived, await _spool.ReadRawAsync(stored[1]));
        Assert.Equal((1, false), await FolderStateAsync("imap", "pw", "INBOX"));
        Assert.Equal(0, (await _spool.PullAsync(account)).Stored);
    }

    [Fact]
    public async Task A_uidvalidity_change_is_not_taken_as_new_mail()
    {
        _dovecot.AddUser("reset", "pw");
        for (var i = 0; i < 3; i++)
            _dovecot.DeliverRaw("reset", TestMail.Create($"before reset {i}"));
        var account = PullHarness.Account(_dovecot, "reset", "reset", "pw", "ned", UpstreamProtocol.Imap);
        Assert.Equal(3, (await _spool.PullAsync(account)).Stored);

        var oldValidity = await _spool.Runtime.Ledger.GetScopeValidityAsync("reset", "INBOX", CancellationToken.None);
        _dovecot.ResetUidValidity("reset");
        _dovecot.DeliverRaw("reset", TestMail.Create("after reset"));
        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 1, 3), (run.Outcome, run.Stored, run.Duplicates));
        Assert.Equal(4, (await _spool.ListAsync("ned")).Count);
        var third = await _spool.PullAsync(account);
        Assert.Equal((0, 0), (third.Stored, third.Duplicates));
        // The UIDs of the old validity mean nothing any more: the ledger forgot them.
        Assert.Empty(await _spool.Runtime.Ledger.LoadSeenAsync("reset", "INBOX", oldValidity!, CancellationToken.None));
        Assert.Equal(4, (await _spool.Runtime.Ledger.LoadSeenAsync("reset", "INBOX", (await _spool.Runtime.Ledger.GetScopeValidityAsync("reset", "INBOX", CancellationToken.None))!, CancellationToken.None)).Count);
    }

    [Fact]
    public async Task Delete_policy_expunges_only_what_was_stored()
    {
        _dovecot.AddUser("drain", "pw");
        for (var i = 0; i < 4; i++)
            _dovecot.DeliverRaw("drain", TestMail.Create($"drain {i}"));
        var account = PullHarness.Account(_dovecot, "drain", "drain", "pw", "olga", UpstreamProtocol.Imap, TlsMode.StartTls) with
        {
            Leave = new LeavePolicy { DeleteWhenStored = true },
        };

        var run = await _spool.PullAsync(account);

        Assert.Equal((4, 4), (run.Stored, run.DeletedUpstream));
        Assert.Equal(0, (await FolderStateAsync("drain", "pw", "INBOX")).Count);
        Assert.Equal(4, (await _spool.ListAsync("olga")).Count);
    }

    [Fact]
    public async Task A_missing_folder_is_a_configuration_failure_naming_it()
    {
        _dovecot.AddUser("nofolder", "pw");
        var account = PullHarness.Account(_dovecot, "nofolder", "nofolder", "pw", "pat", UpstreamProtocol.Imap) with { Folders = ["Nope"] };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Failed, UpstreamErrorKind.Configuration), (run.Outcome, run.ErrorKind));
        Assert.Contains("Nope", run.Error);
    }
}
