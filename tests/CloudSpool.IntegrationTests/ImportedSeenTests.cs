using Azure.Data.Tables;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// Seen entries imported from another tool carry no size: they are stored with an explicit "unknown" size, match a listed
/// message of any size under their key, and learn the real size at the first pull.
/// </summary>
public sealed class ImportedSeenTests : DovecotAndSpoolTest
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 6, 0, 0, TimeSpan.Zero);

    [Fact]
    public async Task Import_unknown_size_round_trips_and_an_unreadable_size_is_skipped_not_misread()
    {
        var ledger = Spool.Runtime.Ledger;
        await ledger.MarkSeenAsync("sizes", "", "pop3", [new SeenEntry("u:abc", Now, false, null, SeenEntry.UnknownSize), new SeenEntry("u:def", Now, true, "m:1", 42)], CancellationToken.None);

        var seen = await ledger.LoadSeenAsync("sizes", "", "pop3", CancellationToken.None);
        Assert.Equal(SeenEntry.UnknownSize, seen["u:abc"].Size);
        Assert.Equal(42, seen["u:def"].Size);
        Assert.True(seen["u:abc"].MatchesSize(123_456));
        Assert.False(seen["u:def"].MatchesSize(43));

        // The chunk says '?', never a negative number, and a negative size (no writer's) is skipped, not read as unknown.
        var rows = new List<TableEntity>();
        await foreach (var e in Spool.Runtime.Storage.Ledger.QueryAsync<TableEntity>(e => e.PartitionKey == "sizes"))
            rows.Add(e);
        var text = AzurePullLedger.ChunkText(Assert.Single(rows));
        Assert.Contains("u%3Aabc\t" + Now.UtcTicks + "\t0\t\t?\n", text, StringComparison.Ordinal);
        Assert.Empty(AzurePullLedger.ParseChunk("u:x\t1\t0\t\t-1\n"));
        Assert.Equal(SeenEntry.UnknownSize, Assert.Single(AzurePullLedger.ParseChunk("u:x\t1\t0\t\t?\n")).Size);
    }

    /// <summary>A Dovecot user (password "pw") with <paramref name="count"/> messages; their keys as the server lists them.</summary>
    private async Task<List<string>> MailboxAsync(string user, int count)
    {
        Dovecot.AddUser(user, "pw");
        for (var i = 0; i < count; i++)
            Dovecot.DeliverRaw(user, TestMail.Create($"{user} {i}", bodyBytes: 100 + i));
        return [.. (await UpstreamProbe.FetchAllAsync(Dovecot, user, "pw")).Keys];
    }

    [Fact]
    public async Task Import_entries_without_size_keep_their_messages_from_being_fetched_and_learn_their_sizes()
    {
        var keys = await MailboxAsync("sized", 4);
        var account = PullHarness.Account(Dovecot, "sized", "sized", "pw", "sized-box");
        await Spool.Runtime.Ledger.MarkSeenAsync("sized", "", "pop3",
            keys.Take(3).Select(k => new SeenEntry(k, Now, false, null, SeenEntry.UnknownSize)).ToList(), CancellationToken.None);

        var run = await Spool.PullAsync(account);

        Assert.Equal(1, run.Stored);
        Assert.Equal(["sized 3"], (await Spool.ListAsync("sized-box")).Select(m => m.Summary.Subject));
        var seen = await Spool.Runtime.Ledger.LoadSeenAsync("sized", "", "pop3", CancellationToken.None);
        Assert.Equal(4, seen.Count);
        Assert.All(seen.Values, e => Assert.NotEqual(SeenEntry.UnknownSize, e.Size));
        Assert.Equal(0, (await Spool.PullAsync(account)).Stored);
    }

    [Fact]
    public async Task Import_entries_are_never_deleted_upstream_by_an_account_that_deletes_what_it_stores()
    {
        // The old tool left these on the server; CloudSpool deletes only what it stored itself.
        var keys = await MailboxAsync("left", 3);
        var account = PullHarness.Account(Dovecot, "left", "left", "pw", "left-box") with { Leave = new LeavePolicy { DeleteWhenStored = true, DeleteAfterDays = 1 } };
        await Spool.Runtime.Ledger.MarkSeenAsync("left", "", "pop3",
            keys.Select(k => new SeenEntry(k, Now.AddDays(-400), false, null, SeenEntry.UnknownSize)).ToList(), CancellationToken.None);
        Dovecot.DeliverRaw("left", TestMail.Create("arrived later"));

        Assert.Equal(1, (await Spool.PullAsync(account)).Stored);
        Assert.Equal(0, (await Spool.PullAsync(account)).Stored);

        Assert.Equal(["arrived later"], (await Spool.ListAsync("left-box")).Select(m => m.Summary.Subject));
        Assert.Equal(keys.Order(StringComparer.Ordinal), (await UpstreamProbe.FetchAllAsync(Dovecot, "left", "pw")).Keys.Order(StringComparer.Ordinal));
    }
}
