using System.Text;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Security;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// Upstream identity: a server whose UID state is reset (a migrated mailbox, a rebuilt index) gives new mail the UIDLs
/// of messages that are gone, and an IMAP server without UIDPLUS offers only an EXPUNGE that removes what others
/// flagged. Dovecot with <c>pop3_uidl_format = %08Xu</c> (a UIDL without the UIDVALIDITY, as many servers have) and
/// without UIDPLUS in its IMAP capabilities; the UID state is reset by removing its uidlist and index files.
/// </summary>
public sealed class PullUidReuseTests : IAsyncLifetime
{
    private const string ImapWithoutUidPlus = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE UNSELECT CHILDREN";
    private DovecotServer _dovecot = null!;
    private PullHarness _spool = null!;

    public async Task InitializeAsync()
    {
        _dovecot = await DovecotServer.StartAsync($"pop3_uidl_format = %08Xu\nimap_capability = {ImapWithoutUidPlus}\n");
        _spool = await PullHarness.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _spool.DisposeAsync();
        await _dovecot.DisposeAsync();
    }

    /// <summary>A message whose subject has the given text; equal <paramref name="bodyBytes"/> and subject lengths give equal sizes.</summary>
    private static byte[] Mail(string subject, int bodyBytes) => TestMail.Create(subject, bodyBytes: bodyBytes);

    /// <summary>Removes every message file of the user, as another client deleting them would; then the UID state is reset.</summary>
    private void RemoveAllAndResetUids(string user)
    {
        foreach (var file in _dovecot.ListMessageFiles(user))
            File.Delete(file);
        _dovecot.ResetUidValidity(user);
    }

    private async Task<List<string>> SubjectsAsync(string mailbox) =>
        [.. (await _spool.ListAsync(mailbox)).Select(m => m.Summary.Subject ?? "")];

    private async Task<string> OnlyUpstreamUidlAsync(string user) =>
        Assert.Single((await UpstreamProbe.FetchAllAsync(_dovecot, user, "pw")).Keys);

    [Fact]
    public async Task Delete_policy_stores_new_mail_that_reuses_the_uidl_of_a_message_it_deleted()
    {
        _dovecot.AddUser("del", "pw");
        _dovecot.DeliverRaw("del", Mail("first A", 300));
        var account = PullHarness.Account(_dovecot, "del", "del", "pw", "m-del") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        var uidlOfA = await OnlyUpstreamUidlAsync("del");
        var first = await _spool.PullAsync(account);
        Assert.Equal((1, 1), (first.Stored, first.DeletedUpstream));
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "del", "pw"));

        // Same UIDL and the same size: only forgetting the entry once QUIT confirmed the deletion tells them apart.
        _dovecot.ResetUidValidity("del");
        _dovecot.DeliverRaw("del", Mail("later B", 300));
        Assert.Equal(uidlOfA, await OnlyUpstreamUidlAsync("del"));

        var run = await _spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 1, 1), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(["first A", "later B"], await SubjectsAsync("m-del"));
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "del", "pw"));
        Assert.Empty(await _spool.Runtime.Ledger.LoadSeenAsync("del", "", "pop3", CancellationToken.None));
    }

    [Fact]
    public async Task Keep_policy_fetches_a_message_listed_under_a_known_uidl_with_another_size()
    {
        _dovecot.AddUser("keep", "pw");
        _dovecot.DeliverRaw("keep", Mail("kept A", 300));
        var account = PullHarness.Account(_dovecot, "keep", "keep", "pw", "m-keep");
        var uidlOfA = await OnlyUpstreamUidlAsync("keep");
        Assert.Equal(1, (await _spool.PullAsync(account)).Stored);

        // Another client removes A; the server's UID state is reset; B arrives under A's UIDL before the next run.
        RemoveAllAndResetUids("keep");
        _dovecot.DeliverRaw("keep", Mail("later B", 900));
        Assert.Equal(uidlOfA, await OnlyUpstreamUidlAsync("keep"));

        var run = await _spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 1, 0), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(["kept A", "later B"], await SubjectsAsync("m-keep"));
        Assert.Equal(1, await UpstreamProbe.CountAsync(_dovecot, "keep", "pw"));
        Assert.Equal(0, (await _spool.PullAsync(account)).Stored);
    }

    [Fact]
    public async Task Delete_after_days_never_deletes_a_message_it_has_not_stored_under_a_reused_uidl()
    {
        _dovecot.AddUser("aged", "pw");
        _dovecot.DeliverRaw("aged", Mail("aged A", 300));
        var account = PullHarness.Account(_dovecot, "aged", "aged", "pw", "m-aged") with { Leave = new LeavePolicy { DeleteAfterDays = 30 } };
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var engine = _spool.EngineWith(clock);
        var request = new PullRunRequest { IgnoreBackoff = true };
        Assert.Equal(1, (await engine.RunAsync(account, request, CancellationToken.None)).Stored);

        RemoveAllAndResetUids("aged");
        _dovecot.DeliverRaw("aged", Mail("later B", 900));
        clock.Now += TimeSpan.FromDays(31);

        var run = await engine.RunAsync(account, request, CancellationToken.None);

        // B is stored, and kept upstream for its own 30 days.
        Assert.Equal((RunOutcome.Succeeded, 1, 0), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(["aged A", "later B"], await SubjectsAsync("m-aged"));
        Assert.Contains("later B", Encoding.ASCII.GetString(Assert.Single((await UpstreamProbe.FetchAllAsync(_dovecot, "aged", "pw")).Values)));
    }

    [Fact]
    public async Task Delete_larger_checks_the_size_of_an_entry_a_crash_left_behind()
    {
        _dovecot.AddUser("large", "pw");
        _dovecot.DeliverRaw("large", Mail("large A", 20_000));
        var account = PullHarness.Account(_dovecot, "large", "large", "pw", "m-large") with { Leave = new LeavePolicy { DeleteLargerThan = 10_000 } };
        var uidlOfA = await OnlyUpstreamUidlAsync("large");
        var first = await _spool.PullAsync(account);
        Assert.Equal((1, 1), (first.Stored, first.DeletedUpstream));

        // A crash between QUIT and forgetting leaves A's entry behind; then the UID state is reset and B takes the UIDL.
        var ledger = _spool.Runtime.Ledger;
        Assert.Empty(await ledger.LoadSeenAsync("large", "", "pop3", CancellationToken.None));
        var stored = Assert.Single(await _spool.ListAsync("m-large"));
        await ledger.MarkSeenAsync("large", "", "pop3", [new SeenEntry(uidlOfA, DateTimeOffset.UtcNow, Stored: true, stored.MessageKey, stored.RawLength + 1)], CancellationToken.None);
        _dovecot.ResetUidValidity("large");
        _dovecot.DeliverRaw("large", Mail("large B", 30_000));
        Assert.Equal(uidlOfA, await OnlyUpstreamUidlAsync("large"));

        var run = await _spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 1, 1), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(["large A", "large B"], await SubjectsAsync("m-large"));
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "large", "pw"));
    }

    [Fact]
    public async Task A_size_mismatch_fetches_again_and_the_dedup_key_keeps_a_true_duplicate_out()
    {
        _dovecot.AddUser("same", "pw");
        _dovecot.DeliverRaw("same", Mail("only one", 300));
        var account = PullHarness.Account(_dovecot, "same", "same", "pw", "m-same") with { Leave = new LeavePolicy { DeleteAfterDays = 30 } };
        Assert.Equal(1, (await _spool.PullAsync(account)).Stored);
        var ledger = _spool.Runtime.Ledger;
        var entry = Assert.Single((await ledger.LoadSeenAsync("same", "", "pop3", CancellationToken.None)).Values);
        await ledger.MarkSeenAsync("same", "", "pop3", [entry with { Size = entry.Size + 7 }], CancellationToken.None);

        var run = await _spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 0, 1, 0), (run.Outcome, run.Stored, run.Duplicates, run.DeletedUpstream));
        Assert.Single(await _spool.ListAsync("m-same"));
        Assert.Equal(entry.Size, Assert.Single((await ledger.LoadSeenAsync("same", "", "pop3", CancellationToken.None)).Values).Size);
    }

    [Fact]
    public async Task Imap_without_uidplus_leaves_deleted_mail_flagged_and_expunges_nothing_of_others()
    {
        _dovecot.AddUser("noplus", "pw");
        _dovecot.DeliverRaw("noplus", Mail("there before", 300));
        var account = PullHarness.Account(_dovecot, "noplus", "noplus", "pw", "m-noplus", UpstreamProtocol.Imap) with
        {
            FirstRun = FirstRunMode.SkipExisting,
            Leave = new LeavePolicy { DeleteWhenStored = true },
        };
        Assert.Equal(1, (await _spool.PullAsync(account)).TakenAsSeen);

        // Another client flags the message CloudSpool never stored as \Deleted, without expunging it.
        using (var other = await ConnectImapAsync("noplus"))
        {
            Assert.False(other.Capabilities.HasFlag(ImapCapabilities.UidPlus));
            var inbox = other.Inbox;
            await inbox.OpenAsync(FolderAccess.ReadWrite);
            await inbox.AddFlagsAsync(0, MessageFlags.Deleted, silent: true);
            await other.DisconnectAsync(quit: true);
        }
        _dovecot.DeliverRaw("noplus", Mail("new mail", 300));

        var run = await _spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 1, 0), (run.Outcome, run.Stored, run.DeletedUpstream));
        Assert.Equal(["new mail"], await SubjectsAsync("m-noplus"));
        using (var probe = await ConnectImapAsync("noplus"))
        {
            var inbox = probe.Inbox;
            await inbox.OpenAsync(FolderAccess.ReadOnly);
            var flags = await inbox.FetchAsync(0, -1, MessageSummaryItems.Flags | MessageSummaryItems.Envelope);
            Assert.Equal(["there before", "new mail"], flags.Select(f => f.Envelope!.Subject));
            Assert.All(flags, f => Assert.True(f.Flags!.Value.HasFlag(MessageFlags.Deleted)));
            await probe.DisconnectAsync(quit: true);
        }
        var state = await _spool.Runtime.States.GetStateAsync("noplus", CancellationToken.None);
        Assert.Equal(1, state!.UpstreamLeftFlaggedDeleted);
        var note = Core.Health.HealthEvaluator.LeftFlaggedNote(state);
        Assert.Contains("UIDPLUS", note, StringComparison.Ordinal);
        Assert.Contains(note!, Core.Health.HealthEvaluator.Evaluate(account, state, DateTimeOffset.UtcNow,
            new Core.Health.HealthThresholds(TimeSpan.FromHours(1), TimeSpan.FromDays(1))).Reason, StringComparison.Ordinal);

        // The next run stores nothing, expunges nothing, and still says what is left; so does `cloudspool status`.
        var again = await _spool.PullAsync(account);
        Assert.Equal((0, 0), (again.Stored, again.DeletedUpstream));
        Assert.Equal(1, (await _spool.Runtime.States.GetStateAsync("noplus", CancellationToken.None))!.UpstreamLeftFlaggedDeleted);
        Assert.True(await _spool.Runtime.Accounts.AddAsync(account, CancellationToken.None));
        var status = await CliProcess.RunAsync(_spool.CliEnvironment(), "status");
        Assert.Equal(0, status.ExitCode);
        Assert.Contains("  1 stored messages are left upstream flagged \\Deleted, not expunged: the server lacks UIDPLUS", status.Stdout, StringComparison.Ordinal);
    }

    private async Task<ImapClient> ConnectImapAsync(string user)
    {
        var client = new ImapClient();
        await client.ConnectAsync(_dovecot.Host, _dovecot.ImapPort, SecureSocketOptions.None);
        await client.AuthenticateAsync(user, "pw");
        return client;
    }
}
