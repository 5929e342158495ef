using CloudSpool.Core.Spool;
using CloudSpool.Edge;

namespace CloudSpool.Edge.Tests;

/// <summary>
/// The edge's on-disk index of a mailbox: entries of messages in packs keep their offset and share the pack's name, and
/// entries of rows sized by the old bare-CR rule keep that mark, across a restart; a torn append is cut off; the first
/// full listing after a restart keeps the entries read from disk that it lists unchanged; and a full listing in
/// storage's order is held in key order.
/// </summary>
public sealed class IndexFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cloudspool-index-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static SpoolIndexEntry Entry(int i, long? offset, bool bareCrAsCrlf = false) =>
        new($"m:{i:D19}-0000abcd", $"uidl{i}", 100 + i, 98 + i, new string('a', 64), offset is null ? $"box/aa/{i}.eml" : "box/packs/20261129/p.pack", offset,
            bareCrAsCrlf);

    [Fact]
    public void Entries_with_and_without_a_pack_offset_or_the_old_size_rule_read_back_the_same_after_rewrites_and_appends()
    {
        var path = Path.Combine(_directory, "box.index");
        var first = new[] { Entry(1, null), Entry(2, 0, bareCrAsCrlf: true), Entry(3, 4096) };
        new IndexFile(path, "box").Rewrite(first);
        var added = new[] { Entry(4, 123_456_789), Entry(5, null, bareCrAsCrlf: true) };
        new IndexFile(path, "box").Append(added, ["m:0000000000000000001-0000abcd"], () => [.. first.Skip(1), .. added]);

        var loaded = new IndexFile(path, "box").Load()!;

        Assert.Equal([.. first.Skip(1), .. added], loaded);
        Assert.Same(loaded[0].BlobName, loaded[2].BlobName); // one pack's name, held once
    }

    [Fact]
    public void Appends_out_of_key_order_a_removal_and_a_key_added_again_read_back_in_key_order_the_last_line_counting()
    {
        var path = Path.Combine(_directory, "box.index");
        var file = new IndexFile(path, "box");
        file.Rewrite([Entry(2, null), Entry(5, 10)]);
        file.Append([Entry(4, null), Entry(1, null)], [], () => []); // a late commit with an older key
        file.Append([], [Entry(5, 10).MessageKey, Entry(1, null).MessageKey], () => []);
        file.Append([Entry(1, null) with { Pop3Size = 7 }, Entry(3, 20)], [], () => []); // one removed comes back, changed
        file.Append([Entry(3, 30)], [], () => []); // the same key again: the later line counts

        Assert.Equal([Entry(1, null) with { Pop3Size = 7 }, Entry(2, null), Entry(3, 30), Entry(4, null)], new IndexFile(path, "box").Load()!);
    }

    [Fact]
    public async Task An_incremental_sync_merges_an_older_key_in_order_and_trims_what_retention_removed()
    {
        var index = new MailboxIndex("box", null, TimeProvider.System);
        await index.SyncAsync(new Listing([Entry(1, null), Entry(3, null), Entry(5, null)]), TimeSpan.Zero, full: true, CancellationToken.None);

        // Entry 2 was committed late with an older key; entry 1 was removed by retention (the oldest key is now 2).
        var result = await index.SyncAsync(new Listing([Entry(2, null), Entry(3, null), Entry(5, null), Entry(6, null)]), TimeSpan.Zero, full: false, CancellationToken.None);

        Assert.Equal([Entry(2, null), Entry(3, null), Entry(5, null), Entry(6, null)], index.Snapshot);
        Assert.Equal([Entry(2, null), Entry(6, null)], result.Added);
        Assert.Equal([Entry(1, null).MessageKey], result.Removed);
    }

    [Theory]
    [InlineData(40)]
    [InlineData(70_000)] // longer than the block the end of the file is searched in
    public void A_torn_append_is_cut_off_at_load_and_the_next_append_starts_on_a_line_of_its_own(int tornBytes)
    {
        var path = Path.Combine(_directory, "box.index");
        var entries = new[] { Entry(1, null), Entry(2, 4096) };
        new IndexFile(path, "box").Rewrite(entries);
        var whole = new FileInfo(path).Length;
        File.AppendAllText(path, "+\tm:" + new string('7', tornBytes));

        var index = new IndexFile(path, "box");
        Assert.Equal(entries, index.Load());
        Assert.Equal(whole, new FileInfo(path).Length);

        index.Append([Entry(3, null)], [], () => [.. entries, Entry(3, null)]);
        Assert.Equal([.. entries, Entry(3, null)], new IndexFile(path, "box").Load()!);
    }

    [Fact]
    public void A_file_without_a_whole_line_is_unusable_and_emptied()
    {
        var path = Path.Combine(_directory, "box.index");
        File.WriteAllText(path, "cloudspool-index\t2\tbo");

        Assert.Null(new IndexFile(path, "box").Load());
        Assert.Equal(0, new FileInfo(path).Length);
    }

    [Fact]
    public async Task The_first_full_listing_after_a_restart_keeps_the_entries_read_from_disk_that_it_lists_unchanged()
    {
        var path = Path.Combine(_directory, "box.index");
        new IndexFile(path, "box").Rewrite([Entry(1, null), Entry(2, 10), Entry(3, 20)]);
        var index = new MailboxIndex("box", path, TimeProvider.System);
        var loaded = index.Snapshot;
        var changed = Entry(2, 10) with { Pop3Size = 7 };

        var result = await index.SyncAsync(new Listing([Entry(1, null), changed, Entry(3, 20), Entry(4, null)]), TimeSpan.Zero, full: true, CancellationToken.None);

        Assert.Equal([Entry(1, null), changed, Entry(3, 20), Entry(4, null)], index.Snapshot);
        Assert.Same(loaded[0], index.Snapshot[0]);
        Assert.Same(loaded[2], index.Snapshot[2]);
        Assert.NotSame(loaded[1], index.Snapshot[1]);
        Assert.Equal([Entry(4, null)], result.Added);
    }

    [Fact]
    public async Task A_full_listing_that_storage_gives_out_of_key_order_is_held_in_key_order_each_key_once()
    {
        var path = Path.Combine(_directory, "box.index");
        var index = new MailboxIndex("box", path, TimeProvider.System);
        var first = Entry(2, 10);
        var scan = new[] { Entry(5, null), first, Entry(1, null), first with { Uidl = "a second listing of the key" }, Entry(4, 30), Entry(3, 20) };

        var result = await index.SyncAsync(new Listing(scan, scan), TimeSpan.Zero, full: true, CancellationToken.None);

        Assert.Equal([Entry(1, null), first, Entry(3, 20), Entry(4, 30), Entry(5, null)], index.Snapshot);
        Assert.Equal(index.Snapshot, result.Added);
        Assert.Equal(index.Snapshot, new IndexFile(path, "box").Load());
    }

    /// <summary>
    /// A spool that lists the given entries (new instances at every listing) and nothing else; a whole mailbox is scanned in
    /// the order of <paramref name="scan"/> (by default the listing's, reversed).
    /// </summary>
    private sealed class Listing(SpoolIndexEntry[] entries, SpoolIndexEntry[]? scan = null) : ISpoolReader
    {
        public async IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            foreach (var e in entries)
                yield return e with { };
        }

        public async IAsyncEnumerable<SpoolIndexEntry> ScanIndexAsync(string mailbox, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await Task.Yield();
            foreach (var e in scan ?? entries.Reverse())
                yield return e with { };
        }

        public Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken) => Task.FromResult<string?>(entries[0].MessageKey);

        public Task<Stream> OpenContentAsync(string blobName, long? offset, long length, CancellationToken cancellationToken) => throw new NotSupportedException();

        public IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) => throw new NotSupportedException();

        public Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken) => throw new NotSupportedException();
    }

    [Fact]
    public void An_index_line_with_an_unreadable_offset_makes_the_file_unusable_so_it_is_rebuilt_from_storage()
    {
        var path = Path.Combine(_directory, "box.index");
        new IndexFile(path, "box").Rewrite([Entry(1, 10)]);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\t10\n", "\tten\n", StringComparison.Ordinal));

        Assert.Null(new IndexFile(path, "box").Load());
    }

    [Fact]
    public void An_index_line_whose_sha_is_no_sha256_makes_the_file_unusable_so_it_is_rebuilt_from_storage()
    {
        var path = Path.Combine(_directory, "box.index");
        new IndexFile(path, "box").Rewrite([Entry(1, 10)]);
        File.WriteAllText(path, File.ReadAllText(path).Replace(new string('a', 64), new string('a', 63) + "z", StringComparison.Ordinal));

        Assert.Null(new IndexFile(path, "box").Load());
    }

    [Fact]
    public void A_version_1_file_is_rebuilt_from_storage_since_it_cannot_tell_which_entries_have_the_old_size_rule()
    {
        var path = Path.Combine(_directory, "box.index");
        new IndexFile(path, "box").Rewrite([Entry(1, null)]);
        File.WriteAllText(path, File.ReadAllText(path).Replace("cloudspool-index\t2\t", "cloudspool-index\t1\t", StringComparison.Ordinal));

        Assert.Null(new IndexFile(path, "box").Load());
    }
}
