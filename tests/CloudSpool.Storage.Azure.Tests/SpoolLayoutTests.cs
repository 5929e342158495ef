using Azure.Data.Tables;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Storage.Azure.Tests;

/// <summary>
/// The segment layout on a real Azurite: a mailbox written partly by earlier versions (a row per message) and partly in
/// segments reads as one; a message is held once across both; retention removes from both; and writers racing on one
/// mailbox's dedup buckets store every message exactly once.
/// </summary>
public sealed class SpoolLayoutTests : IAsyncLifetime
{
    private PullHarness _spool = null!;

    public async Task InitializeAsync() => _spool = await PullHarness.StartAsync();

    public async Task DisposeAsync() => await _spool.DisposeAsync();

    /// <summary>The same bytes for the same subject (a fixed Message-ID).</summary>
    private static byte[] Mail(string subject) => TestMail.Create(subject, messageId: subject.Replace(' ', '-') + "@layout.test");

    [Fact]
    public async Task Rows_of_earlier_versions_and_segments_read_as_one_mailbox_and_hold_each_message_once()
    {
        var earlier = DateTimeOffset.UtcNow - TimeSpan.FromDays(3);
        await _spool.PutLegacyAsync("mixed", Mail("old 1"), earlier);
        await _spool.PutLegacyAsync("mixed", Mail("old 2"), earlier + TimeSpan.FromSeconds(1));
        var fresh = await _spool.PutAsync("mixed", Mail("new 1"));

        var listed = await _spool.ListAsync("mixed");
        Assert.Equal(["old 1", "old 2", "new 1"], listed.Select(m => m.Summary.Subject));
        var index = new List<SpoolIndexEntry>();
        await foreach (var e in _spool.Runtime.SpoolReader.ListIndexAsync("mixed", null, CancellationToken.None))
            index.Add(e);
        Assert.Equal(listed.Select(m => (m.MessageKey, m.Uidl, m.Pop3Size, m.BlobName)), index.Select(e => (e.MessageKey, e.Uidl, e.Pop3Size, e.BlobName)));
        Assert.Equal(index, await ScanAsync("mixed"));
        Assert.Equal(listed[0].MessageKey, await _spool.Runtime.SpoolReader.FirstKeyAsync("mixed", CancellationToken.None));
        foreach (var m in listed)
            Assert.Equal(m.Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await _spool.ReadRawAsync(m))));

        // The same mail again, as a new pull would bring it: held already, in either format, under its first key.
        var again = IngestedMessage.FromBytes(Mail("old 2"), "other", "x", DateTimeOffset.UtcNow);
        var twice = IngestedMessage.FromBytes(Mail("new 1"), "other", "y", DateTimeOffset.UtcNow);
        var results = await _spool.Runtime.Spool.CommitAsync("mixed", [again, twice], CancellationToken.None);
        Assert.Equal([(StoreOutcome.Duplicate, listed[1].MessageKey), (StoreOutcome.Duplicate, fresh.MessageKey)], results.Select(r => (r.Outcome, r.MessageKey)));
        Assert.Equal(3, (await _spool.ListAsync("mixed")).Count);

        // Retention reaches both: the older two go, and the check finds nothing left behind.
        var run = await _spool.Runtime.Retention.RunAsync(new Dictionary<string, int> { ["mixed"] = 1 }, CancellationToken.None);
        Assert.Contains("mixed: 2 removed", run.Summary);
        Assert.Equal("new 1", Assert.Single(await _spool.ListAsync("mixed")).Summary.Subject);
        var check = Assert.Single(await _spool.Runtime.Retention.CheckAsync(["mixed"], fix: false, CancellationToken.None, TimeSpan.Zero));
        Assert.True(check.Consistent, string.Join(",", check.BlobsWithoutRow.Concat(check.RowsWithoutBlob)));
        Assert.Equal(1, check.Blobs);

        // A message removed is not held any more: it can come again.
        var back = IngestedMessage.FromBytes(Mail("old 1"), "other", "z", DateTimeOffset.UtcNow);
        await _spool.Runtime.Spool.WriteContentAsync("mixed", back, new MemoryStream(Mail("old 1")), CancellationToken.None);
        Assert.Equal(StoreOutcome.Stored, Assert.Single(await _spool.Runtime.Spool.CommitAsync("mixed", [back], CancellationToken.None)).Outcome);
    }

    [Fact]
    public async Task Writers_racing_on_one_mailbox_store_every_message_exactly_once()
    {
        // Two writers (two worker processes: nothing shared but the storage), the same 120 messages, each in its own order.
        var mails = Enumerable.Range(0, 120).Select(i => Mail($"race {i}")).ToList();
        var writers = new[] { new AzureSpool(_spool.Runtime.Storage), new AzureSpool(_spool.Runtime.Storage) };
        foreach (var raw in mails)
        {
            var m = IngestedMessage.FromBytes(raw, "a", "k", DateTimeOffset.UtcNow);
            await writers[0].WriteContentAsync("race", m, new MemoryStream(raw), CancellationToken.None);
        }

        async Task<List<StoreResult>> WriteAllAsync(AzureSpool writer, IEnumerable<byte[]> order)
        {
            var results = new List<StoreResult>();
            foreach (var batch in order.Chunk(7))
                results.AddRange(await writer.CommitAsync("race", batch.Select(raw => IngestedMessage.FromBytes(raw, "a", "k", DateTimeOffset.UtcNow)).ToList(), CancellationToken.None));
            return results;
        }
        var both = await Task.WhenAll(WriteAllAsync(writers[0], mails), WriteAllAsync(writers[1], Enumerable.Reverse(mails)));

        var listed = await _spool.ListAsync("race");
        Assert.Equal(120, listed.Count);
        Assert.Equal(listed.Select(m => m.MessageKey), (await ScanAsync("race")).Select(e => e.MessageKey)); // rows that overlap
        Assert.Equal(120, listed.Select(m => m.DedupKey).Distinct().Count());
        Assert.Equal(120, both.Sum(r => r.Count(x => x.Outcome == StoreOutcome.Stored)));
        // Each writer was told the key that holds each message.
        var keys = listed.ToDictionary(m => m.Summary.Subject!, m => m.MessageKey);
        Assert.Equal(mails.Select((_, i) => keys[$"race {i}"]), both[0].Select(r => r.MessageKey));
        Assert.Equal(Enumerable.Range(0, 120).Reverse().Select(i => keys[$"race {i}"]), both[1].Select(r => r.MessageKey));
    }

    [Fact]
    public async Task A_large_pull_reads_the_dedup_index_in_one_query_and_a_stale_copy_still_stores_each_message_once()
    {
        async Task<List<StoreResult>> CommitAsync(AzureSpool writer, IEnumerable<byte[]> mails)
        {
            var results = new List<StoreResult>();
            foreach (var batch in mails.Chunk(AzureSpool.SegmentMembers))
            {
                var messages = batch.Select(raw => IngestedMessage.FromBytes(raw, "a", "k", DateTimeOffset.UtcNow)).ToList();
                for (var i = 0; i < batch.Length; i++)
                    await writer.WriteContentAsync("bulk", messages[i], new MemoryStream(batch[i]), CancellationToken.None);
                results.AddRange(await writer.CommitAsync("bulk", messages, CancellationToken.None));
            }
            return results;
        }

        // A pull of 400 new messages looks up about 380 buckets: past the first ones, it reads them all in one query.
        var first = Enumerable.Range(0, 400).Select(i => Mail($"bulk {i}")).ToList();
        var puller = new AzureSpool(_spool.Runtime.Storage);
        var stored = await CommitAsync(puller, first);
        Assert.All(stored, r => Assert.Equal(StoreOutcome.Stored, r.Outcome));
        Assert.Equal(1, puller.Dedup.WholeReads);
        Assert.InRange(puller.Dedup.BucketQueries, DedupIndex.WholeIndexAfter, DedupIndex.WholeIndexAfter + AzureSpool.SegmentMembers);

        // Another process reads the whole index while it finds the same mail held ...
        var late = new AzureSpool(_spool.Runtime.Storage);
        var again = await CommitAsync(late, first.Take(150));
        Assert.Equal(stored.Take(150).Select(r => (StoreOutcome.Duplicate, r.MessageKey)), again.Select(r => (r.Outcome, r.MessageKey)));
        Assert.Equal(1, late.Dedup.WholeReads);

        // ... then a third stores new mail, which the second's copy of the index does not show: its commit of the same
        // mail is refused by the buckets' ETags, it reads them again and finds every message held.
        var more = Enumerable.Range(400, 60).Select(i => Mail($"bulk {i}")).ToList();
        var third = await CommitAsync(new AzureSpool(_spool.Runtime.Storage), more);
        Assert.All(third, r => Assert.Equal(StoreOutcome.Stored, r.Outcome));
        var stale = await CommitAsync(late, more);
        Assert.Equal(third.Select(r => (StoreOutcome.Duplicate, r.MessageKey)), stale.Select(r => (r.Outcome, r.MessageKey)));

        var listed = await _spool.ListAsync("bulk");
        Assert.Equal(460, listed.Count);
        Assert.Equal(460, listed.Select(m => m.DedupKey).Distinct().Count());
    }

    [Fact]
    public async Task A_mailbox_of_more_segment_rows_than_a_page_lists_every_message_once_in_key_order()
    {
        var count = SegmentTable.PageRows + 3;
        var keys = new List<string>();
        for (var i = 0; i < count; i++)
            keys.Add((await _spool.PutAsync("paged", Mail($"paged {i}"))).MessageKey);
        Assert.Equal(count, await RowCountAsync("paged", StorageNames.SegmentRowPrefix)); // a commit each: a row each

        var (messages, index) = await ReadAllAsync("paged");

        Assert.Equal(keys, index.Select(e => e.MessageKey));
        Assert.Equal(keys, messages.Select(m => m.MessageKey));
        var after = new List<string>();
        await foreach (var e in _spool.Runtime.SpoolReader.ListIndexAsync("paged", keys[count - 5], CancellationToken.None))
            after.Add(e.MessageKey);
        Assert.Equal(keys[^4..], after);
        Assert.Equal(keys[0], await _spool.Runtime.SpoolReader.FirstKeyAsync("paged", CancellationToken.None));
    }

    [Fact]
    public async Task Segments_whose_key_ranges_overlap_list_in_key_order_and_scan_each_message_once()
    {
        // Two writers whose clocks are three ticks apart commit at once: the row of the one behind ends first but holds
        // keys after the start of the other's, so rows in the order of their last keys are not in the order of their members.
        var start = DateTimeOffset.UtcNow - TimeSpan.FromHours(1);
        async Task<List<string>> CommitAsync(DateTimeOffset clock, string name)
        {
            var writer = new AzureSpool(_spool.Runtime.Storage, new ManualClock(clock));
            var mails = Enumerable.Range(0, 6).Select(i => Mail($"{name} {i}")).ToList();
            var messages = mails.Select(raw => IngestedMessage.FromBytes(raw, "a", "k", DateTimeOffset.UtcNow)).ToList();
            for (var i = 0; i < mails.Count; i++)
                await writer.WriteContentAsync("overlap", messages[i], new MemoryStream(mails[i]), CancellationToken.None);
            return [.. (await writer.CommitAsync("overlap", messages, CancellationToken.None)).Select(r => r.MessageKey)];
        }
        var behind = await CommitAsync(start, "behind");
        var ahead = await CommitAsync(start + TimeSpan.FromTicks(3), "ahead");
        Assert.True(string.CompareOrdinal(ahead[0], behind[^1]) < 0, "the rows overlap");

        var (messages, index) = await ReadAllAsync("overlap"); // which also compares the scan

        var keys = behind.Concat(ahead).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(keys, index.Select(e => e.MessageKey));
        Assert.Equal(keys, messages.Select(m => m.MessageKey));
        var scanned = new List<string>();
        await foreach (var e in new AzureSpool(_spool.Runtime.Storage).ScanIndexAsync("overlap", CancellationToken.None))
            scanned.Add(e.MessageKey);
        Assert.Equal([.. behind, .. ahead], scanned); // storage's order: by row, the row ending first first
    }

    private async Task<int> RowCountAsync(string mailbox, string prefix)
    {
        var count = 0;
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {mailbox} and RowKey ge {prefix} and RowKey lt {StorageNames.PrefixEnd(prefix)}");
        await foreach (var _ in _spool.Runtime.Storage.Messages.QueryAsync<TableEntity>(filter, select: ["RowKey"]))
            count++;
        return count;
    }

    private async Task<(List<SpoolMessage> Messages, List<SpoolIndexEntry> Index)> ReadAllAsync(string mailbox)
    {
        var reader = new AzureSpool(_spool.Runtime.Storage); // nothing kept from before
        var messages = new List<SpoolMessage>();
        await foreach (var m in reader.ListAsync(mailbox, null, CancellationToken.None))
            messages.Add(m);
        var index = new List<SpoolIndexEntry>();
        await foreach (var e in reader.ListIndexAsync(mailbox, null, CancellationToken.None))
            index.Add(e);
        Assert.Equal(index, await ScanAsync(mailbox));
        return (messages, index);
    }

    /// <summary>The mailbox's index as scanned in storage's order, then put in key order.</summary>
    private async Task<List<SpoolIndexEntry>> ScanAsync(string mailbox)
    {
        var scanned = new List<SpoolIndexEntry>();
        await foreach (var e in new AzureSpool(_spool.Runtime.Storage).ScanIndexAsync(mailbox, CancellationToken.None))
            scanned.Add(e);
        Assert.Equal(scanned.Count, scanned.Select(e => e.MessageKey).Distinct().Count());
        return [.. scanned.OrderBy(e => e.MessageKey, StringComparer.Ordinal)];
    }

    [Fact]
    public async Task Compact_moves_rows_of_earlier_versions_into_segments_keeping_keys_uidls_sizes_and_bytes()
    {
        var start = DateTimeOffset.UtcNow - TimeSpan.FromDays(2);
        var rows = new List<TableEntity>();
        for (var i = 0; i < 40; i++)
            rows.Add(await _spool.PutLegacyAsync("compact", Mail($"legacy {i}"), start + TimeSpan.FromMinutes(i)));
        // A row sized by the old bare-CR rule, and one whose UIDL no segment could give it (an older UIDL rule).
        rows[5].Remove("Pop3SizeRule");
        rows[5]["Pop3Size"] = rows[5].GetInt64("Pop3Size") + 3;
        rows[7]["Uidl"] = "an-older-uidl";
        foreach (var row in new[] { rows[5], rows[7] })
            await _spool.Runtime.Storage.Messages.UpdateEntityAsync(row, global::Azure.ETag.All, TableUpdateMode.Replace);
        await _spool.PutAsync("compact", Mail("new after the upgrade"));
        var before = await ReadAllAsync("compact");
        Assert.True(before.Index[5].BareCrAsCrlf);

        var run = await CliProcess.RunAsync(_spool.CliEnvironment(), "storage", "compact");

        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("compact: 39 messages moved into segments, 1 left as rows", run.Stdout);
        Assert.Contains($"left {rows[7].RowKey}: its UIDL is not the one a segment would give it", run.Stdout);
        Assert.Equal((1, 1), (await RowCountAsync("compact", "m:"), await RowCountAsync("compact", "d:")));
        var after = await ReadAllAsync("compact");
        Assert.Equal(before.Index, after.Index); // keys, UIDLs, sizes, hashes, blobs, offsets and the old size rule
        Assert.Equivalent(before.Messages, after.Messages, strict: true);
        foreach (var m in after.Messages)
            Assert.Equal(m.Sha256, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(await _spool.ReadRawAsync(m))));

        // Held once still: the same mail again is a duplicate of the moved message.
        var again = IngestedMessage.FromBytes(Mail("legacy 3"), "other", "x", DateTimeOffset.UtcNow);
        Assert.Equal((StoreOutcome.Duplicate, rows[3].RowKey), Assert.Single(await new AzureSpool(_spool.Runtime.Storage).CommitAsync("compact", [again], CancellationToken.None)) is var r ? (r.Outcome, r.MessageKey) : default);

        // Run again: nothing more to move, the row left is still reported.
        var second = await CliProcess.RunAsync(_spool.CliEnvironment(), "storage", "compact", "--mailbox", "compact");
        Assert.Contains("compact: 0 messages moved into segments, 1 left as rows", second.Stdout);
        Assert.Equal(after.Index, (await ReadAllAsync("compact")).Index);
    }
}
