using System.Security.Cryptography;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Storage.Azure.Tests;

/// <summary>
/// Packs: small messages pulled together are written as one blob (one storage request for many messages); each message
/// row says where its bytes lie. Against a real Azurite, with mail pulled from a real Dovecot.
/// </summary>
public sealed class PackTests : DovecotAndSpoolTest
{
    /// <summary>The blobs holding the mailbox's messages (not the segments holding their metadata).</summary>
    private async Task<List<string>> BlobNamesAsync(string mailbox)
    {
        var names = new List<string>();
        await foreach (var blob in Spool.Runtime.Storage.Spool.GetBlobsAsync(new global::Azure.Storage.Blobs.Models.GetBlobsOptions { Prefix = mailbox + "/" }))
        {
            if (!StorageNames.IsSegmentBlob(mailbox, blob.Name))
                names.Add(blob.Name);
        }
        return names;
    }

    private static void AssertSameBytes(SpoolMessage message, byte[] read)
    {
        Assert.Equal(message.RawLength, read.Length);
        Assert.Equal(message.Sha256, Convert.ToHexStringLower(SHA256.HashData(read)));
    }

    private PullEngine Engine(long packMessageBytes = 20_000, long stageInMemoryBytes = 8L << 20) =>
        Spool.EngineWith(TimeProvider.System, o => o with { PackMessageBytes = packMessageBytes, StageInMemoryBytes = stageInMemoryBytes });

    // Staged in memory whatever their size (the default limit, 8 MiB, is above all of them); all in temporary files (0);
    // all in memory but the 60 KB one (50,000), so a pack and a blob of its own are each written from memory and from a file.
    [Theory]
    [InlineData(8L << 20)]
    [InlineData(0L)]
    [InlineData(50_000L)]
    public async Task Small_messages_share_packs_large_ones_keep_their_own_blob_and_every_one_reads_back_byte_exact(long stageInMemoryBytes)
    {
        Dovecot.AddUser("packs", "pw");
        for (var i = 0; i < 60; i++)
            Dovecot.DeliverRaw("packs", TestMail.Create($"small {i}", bodyBytes: 200 + 97 * i));
        Dovecot.DeliverRaw("packs", TestMail.Create("large one", bodyBytes: 40_000));
        Dovecot.DeliverRaw("packs", TestMail.Create("large two", bodyBytes: 60_000));

        var run = await Engine(stageInMemoryBytes: stageInMemoryBytes)
            .RunAsync(PullHarness.Account(Dovecot, "packs", "packs", "pw", "packed"), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((RunOutcome.Succeeded, 62), (run.Outcome, run.Stored));
        Assert.Empty(Directory.GetFiles(Spool.TempDirectory, "ingest-*")); // every staged file is gone
        var messages = await Spool.ListAsync("packed");
        Assert.Equal(62, messages.Count);
        var packed = messages.Where(m => m.Pack is not null).ToList();
        Assert.Equal(60, packed.Count);
        Assert.All(messages.Where(m => m.Pack is null), m => Assert.StartsWith("large", m.Summary.Subject));
        // 49 messages at most in a pack (one transaction commits them all): 49 + 11.
        Assert.Equal([11, 49], packed.GroupBy(m => m.BlobName).Select(g => g.Count()).Order());
        foreach (var pack in packed.GroupBy(m => m.BlobName))
        {
            // The members lie one after the other from the start of the pack, each within its pack's key range.
            var offset = 0L;
            foreach (var m in pack.OrderBy(m => m.Pack!.Offset))
            {
                Assert.Equal(offset, m.Pack!.Offset);
                offset += m.RawLength;
                Assert.InRange(string.CompareOrdinal(m.MessageKey, m.Pack.FirstKey), 0, int.MaxValue);
                Assert.InRange(string.CompareOrdinal(m.MessageKey, m.Pack.LastKey), int.MinValue, 0);
            }
            var properties = await Spool.Runtime.Storage.Spool.GetBlobClient(pack.Key).GetPropertiesAsync();
            Assert.Equal(offset, properties.Value.ContentLength);
        }
        Assert.Equal(4, (await BlobNamesAsync("packed")).Count); // two packs, two messages on their own

        foreach (var m in messages)
            AssertSameBytes(m, await Spool.ReadRawAsync(m));
        // What the edge reads: the index entries carry the offsets too.
        var index = new List<SpoolIndexEntry>();
        await foreach (var e in Spool.Runtime.SpoolReader.ListIndexAsync("packed", null, CancellationToken.None))
            index.Add(e);
        Assert.Equal(messages.Select(m => m.Pack?.Offset), index.Select(e => e.BlobOffset));
        foreach (var (entry, message) in index.Zip(messages))
        {
            await using var stream = await Spool.Runtime.SpoolReader.OpenContentAsync(entry, CancellationToken.None);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            AssertSameBytes(message, copy.ToArray());
        }
    }

    [Fact]
    public async Task Removing_messages_deletes_their_pack_only_with_the_last_of_them()
    {
        Dovecot.AddUser("rm", "pw");
        for (var i = 0; i < 5; i++)
            Dovecot.DeliverRaw("rm", TestMail.Create($"member {i}"));
        Assert.Equal(5, (await Engine().RunAsync(PullHarness.Account(Dovecot, "rm", "rm", "pw", "removing"), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None)).Stored);
        var messages = await Spool.ListAsync("removing");
        var pack = Assert.Single(messages.Select(m => m.BlobName).Distinct());
        var maintenance = new AzureSpoolMaintenance(Spool.Runtime.Storage, new AzureSpool(Spool.Runtime.Storage));

        for (var i = 0; i < 4; i++)
        {
            await maintenance.RemoveAsync(messages[i], CancellationToken.None);
            Assert.Equal([pack], await BlobNamesAsync("removing"));
        }
        var last = Assert.Single(await Spool.ListAsync("removing"));
        AssertSameBytes(last, await Spool.ReadRawAsync(last));

        await maintenance.RemoveAsync(last, CancellationToken.None);
        Assert.Empty(await BlobNamesAsync("removing"));
        Assert.Empty(await Spool.ListAsync("removing"));
    }

    [Fact]
    public async Task Retention_removes_packed_mail_and_its_packs_leaving_the_spool_consistent()
    {
        Dovecot.AddUser("old", "pw");
        for (var i = 0; i < 7; i++)
            Dovecot.DeliverRaw("old", TestMail.Create($"old {i}"));
        var past = Spool.EngineWith(new ManualClock(DateTimeOffset.UtcNow - TimeSpan.FromDays(40)), o => o with { PackMessageBytes = 20_000 });
        Assert.Equal(7, (await past.RunAsync(PullHarness.Account(Dovecot, "old", "old", "pw", "aging"), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None)).Stored);
        Dovecot.DeliverRaw("old", TestMail.Create("new 1"));
        Dovecot.DeliverRaw("old", TestMail.Create("new 2"));
        Assert.Equal(2, (await Engine().RunAsync(PullHarness.Account(Dovecot, "old2", "old", "pw", "aging"), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None)).Stored);
        Assert.Equal(2, (await BlobNamesAsync("aging")).Count);

        var run = await Spool.Runtime.Retention.RunAsync(new Dictionary<string, int> { ["aging"] = 30 }, CancellationToken.None);

        Assert.Contains("aging: 7 removed", run.Summary);
        var left = await Spool.ListAsync("aging");
        Assert.Equal(["new 1", "new 2"], left.Select(m => m.Summary.Subject).Order());
        Assert.Equal([left[0].BlobName], await BlobNamesAsync("aging"));
        var check = Assert.Single(await Spool.Runtime.Retention.CheckAsync(["aging"], fix: false, CancellationToken.None, TimeSpan.Zero));
        Assert.True(check.Consistent);
    }

    [Fact]
    public async Task A_pack_of_messages_the_mailbox_holds_already_is_deleted_at_once()
    {
        Dovecot.AddUser("first", "pw");
        Dovecot.AddUser("second", "pw");
        for (var i = 0; i < 4; i++)
        {
            // The same message reaching two upstream mailboxes (another Received line): the mailbox keeps it once.
            var id = $"same-{i}@example.org";
            Dovecot.DeliverRaw("first", TestMail.Create($"same {i}", messageId: id, received: "from a"));
            Dovecot.DeliverRaw("second", TestMail.Create($"same {i}", messageId: id, received: "from b"));
        }
        Assert.Equal(4, (await Engine().RunAsync(PullHarness.Account(Dovecot, "first", "first", "pw", "shared"), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None)).Stored);
        var before = await BlobNamesAsync("shared");

        var second = await Engine().RunAsync(PullHarness.Account(Dovecot, "second", "second", "pw", "shared"), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((0, 4), (second.Stored, second.Duplicates));
        Assert.Equal(before, await BlobNamesAsync("shared"));
        Assert.True(Assert.Single(await Spool.Runtime.Retention.CheckAsync(["shared"], fix: false, CancellationToken.None, TimeSpan.Zero)).Consistent);
    }

    [Fact]
    public async Task A_pack_the_stored_messages_name_is_never_deleted_even_when_committed_twice()
    {
        // A commit whose answer is lost, retried: every message then conflicts with its own first commit. The winners
        // name this very pack, which must stay.
        var spool = new AzureSpool(Spool.Runtime.Storage);
        var raws = Enumerable.Range(0, 3).Select(i => TestMail.Create($"twice {i}")).ToList();
        var messages = raws.Select(r => IngestedMessage.FromBytes(r, "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow)).ToList();
        var slots = await spool.WritePackAsync("twice", messages.Zip(raws, (m, r) => (m, (Stream)new MemoryStream(r))).ToList(), CancellationToken.None);
        var placed = messages.Select((m, i) => m with { Pack = slots[i] }).ToList();
        Assert.All(await spool.CommitAsync("twice", placed, CancellationToken.None), r => Assert.Equal(StoreOutcome.Stored, r.Outcome));

        var again = await spool.CommitAsync("twice", placed, CancellationToken.None);

        Assert.All(again, r => Assert.Equal(StoreOutcome.Duplicate, r.Outcome));
        foreach (var m in await Spool.ListAsync("twice"))
            AssertSameBytes(m, await Spool.ReadRawAsync(m));
        Assert.Equal([slots[0].BlobName], await BlobNamesAsync("twice"));
    }

    [Fact]
    public async Task A_pack_written_but_never_committed_is_found_and_removed_by_the_repair_check()
    {
        // A crash between the pack's write and its commit: no row names it.
        var spool = new AzureSpool(Spool.Runtime.Storage);
        var raw = TestMail.Create("orphan");
        var message = IngestedMessage.FromBytes(raw, "test", "k", DateTimeOffset.UtcNow);
        var slots = await spool.WritePackAsync("crashed", [(message, new MemoryStream(raw)), (message, new MemoryStream(raw))], CancellationToken.None);

        var check = Assert.Single(await Spool.Runtime.Retention.CheckAsync(["crashed"], fix: true, CancellationToken.None, TimeSpan.Zero));

        Assert.Equal([slots[0].BlobName], check.BlobsWithoutRow);
        Assert.Equal(1, check.BlobsDeleted);
        Assert.Empty(await BlobNamesAsync("crashed"));
    }
}
