using Azure.Data.Tables;
using CloudSpool.Core.Pull;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The seen ledger on a real Azurite: entries are written in chunk rows of many messages each, and a ledger written by an
/// earlier version (a row per message) is still read and forgotten.
/// </summary>
public sealed class PullLedgerTests : IAsyncLifetime
{
    private PullHarness _spool = null!;
    private readonly DateTimeOffset _now = new(2026, 11, 29, 1, 0, 0, TimeSpan.Zero);

    public async Task InitializeAsync() => _spool = await PullHarness.StartAsync();

    public async Task DisposeAsync() => await _spool.DisposeAsync();

    private IPullLedger Ledger => _spool.Runtime.Ledger;

    private SeenEntry Entry(int i, bool stored = true) =>
        new($"uidl-{i:D5}\todd%key:{i}", _now.AddSeconds(i), stored, stored ? $"m:{i:D19}-abcdef01" : null, 1000 + i);

    private async Task<List<string>> RowKeysAsync(string account)
    {
        var keys = new List<string>();
        await foreach (var e in _spool.Runtime.Storage.Ledger.QueryAsync<TableEntity>(e => e.PartitionKey == account, select: ["RowKey"]))
            keys.Add(e.RowKey);
        return keys;
    }

    private async Task<List<TableEntity>> RowsAsync(string account)
    {
        var rows = new List<TableEntity>();
        await foreach (var e in _spool.Runtime.Storage.Ledger.QueryAsync<TableEntity>(e => e.PartitionKey == account))
            rows.Add(e);
        return rows;
    }

    [Fact]
    public async Task Entries_are_written_four_hundred_to_a_compressed_row_and_read_back_exactly()
    {
        var entries = Enumerable.Range(0, 1000).Select(i => Entry(i, stored: i % 7 != 0)).ToList();

        await Ledger.MarkSeenAsync("chunky", "INBOX", "v1", entries, CancellationToken.None);

        var rows = await RowsAsync("chunky");
        Assert.Equal(3, rows.Count);
        Assert.All(rows, r => Assert.Null(r.GetString("Entries")));
        // Compressed to well under half of the text (a mailbox kept upstream has a ledger as large as itself).
        var text = string.Concat(entries.Select(AzurePullLedger.FormatEntry));
        Assert.InRange(rows.Sum(r => r.GetBinary("EntriesZ")!.Length), 1, text.Length / 2);
        var seen = await Ledger.LoadSeenAsync("chunky", "INBOX", "v1", CancellationToken.None);
        Assert.Equal(entries.ToDictionary(e => e.Key), seen);
        Assert.Empty(await Ledger.LoadSeenAsync("chunky", "INBOX", "v2", CancellationToken.None));
        Assert.Empty(await Ledger.LoadSeenAsync("chunky", "Other", "v1", CancellationToken.None));
    }

    [Fact]
    public async Task Chunks_written_before_compression_read_the_same()
    {
        var entries = Enumerable.Range(0, 50).Select(i => Entry(i)).ToList();
        await _spool.Runtime.Storage.Ledger.AddEntityAsync(new TableEntity("plain", StorageNames.SeenChunkPrefix("INBOX", "v1") + "0639320535426831346-0")
        {
            ["Entries"] = string.Concat(entries.Select(AzurePullLedger.FormatEntry)),
        });

        Assert.Equal(entries.ToDictionary(e => e.Key), await Ledger.LoadSeenAsync("plain", "INBOX", "v1", CancellationToken.None));
        await Ledger.ForgetSeenAsync("plain", "INBOX", "v1", [entries[0].Key], CancellationToken.None);
        Assert.Equal(entries.Skip(1).ToDictionary(e => e.Key), await Ledger.LoadSeenAsync("plain", "INBOX", "v1", CancellationToken.None));
    }

    [Fact]
    public async Task Long_keys_go_into_more_rows_each_within_a_property_s_limit()
    {
        var entries = Enumerable.Range(0, 200).Select(i => Entry(i) with { Key = new string('k', 900) + i }).ToList();

        await Ledger.MarkSeenAsync("long", "INBOX", "v1", entries, CancellationToken.None);

        var rows = await RowsAsync("long");
        Assert.InRange(rows.Count, 3, 10);
        Assert.All(rows, r => Assert.InRange(r.GetBinary("EntriesZ")!.Length, 1, 65_536));
        Assert.Equal(entries.ToDictionary(e => e.Key), await Ledger.LoadSeenAsync("long", "INBOX", "v1", CancellationToken.None));
    }

    [Fact]
    public async Task Forgetting_rewrites_or_deletes_only_the_rows_that_held_the_keys_in_both_the_old_and_the_new_layout()
    {
        // A ledger from an earlier version: a row per message.
        var old = Enumerable.Range(0, 5).Select(i => Entry(i)).ToList();
        foreach (var e in old)
        {
            await _spool.Runtime.Storage.Ledger.AddEntityAsync(new TableEntity("mixed", StorageNames.SeenPrefix("INBOX", "v1") + StorageNames.Escape(e.Key))
            {
                ["FirstSeen"] = e.FirstSeen,
                ["Stored"] = e.Stored,
                ["MessageKey"] = e.MessageKey,
                ["Size"] = e.Size,
            });
        }
        var first = Enumerable.Range(5, 10).Select(i => Entry(i)).ToList();
        var second = Enumerable.Range(15, 10).Select(i => Entry(i)).ToList();
        await Ledger.MarkSeenAsync("mixed", "INBOX", "v1", first, CancellationToken.None);
        await Ledger.MarkSeenAsync("mixed", "INBOX", "v1", second, CancellationToken.None);
        // Marked again later (as taken-as-seen, say): the later entry is the one that counts.
        await Ledger.MarkSeenAsync("mixed", "INBOX", "v1", [Entry(3, stored: false)], CancellationToken.None);
        var all = await Ledger.LoadSeenAsync("mixed", "INBOX", "v1", CancellationToken.None);
        Assert.Equal(25, all.Count);
        Assert.False(all[Entry(3).Key].Stored);
        Assert.Equal(8, (await RowKeysAsync("mixed")).Count);

        // Forget two old rows, all of the first chunk, one of the second, and the re-marked key (in both layouts).
        var forget = new[] { Entry(0).Key, Entry(1).Key, Entry(3).Key, Entry(16).Key }.Concat(first.Select(e => e.Key)).ToList();
        await Ledger.ForgetSeenAsync("mixed", "INBOX", "v1", forget, CancellationToken.None);

        var left = await Ledger.LoadSeenAsync("mixed", "INBOX", "v1", CancellationToken.None);
        Assert.Equal(new[] { 2, 4 }.Concat(Enumerable.Range(15, 10).Where(i => i != 16)).Select(i => Entry(i).Key).Order(), left.Keys.Order());
        Assert.Equal(Entry(17), left[Entry(17).Key]);
        // Rows left: the two old ones, and the second chunk rewritten in place.
        Assert.Equal(3, (await RowKeysAsync("mixed")).Count);

        await Ledger.ForgetSeenAsync("mixed", "INBOX", "v1", left.Keys.ToList(), CancellationToken.None);
        Assert.Empty(await Ledger.LoadSeenAsync("mixed", "INBOX", "v1", CancellationToken.None));
        Assert.Empty(await RowKeysAsync("mixed"));
    }
}
