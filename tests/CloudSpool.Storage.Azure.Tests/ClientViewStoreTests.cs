using Azure.Data.Tables;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Storage.Azure.Tests;

/// <summary>
/// Per-client views on a real Azurite: hidden keys kept in chunk rows, a QUIT adding one; rows of earlier versions (one
/// per key) read, swept and merged with them; and compaction that merges many small rows into few without losing a key.
/// </summary>
public sealed class ClientViewStoreTests : IAsyncLifetime
{
    private PullHarness _spool = null!;

    public async Task InitializeAsync() => _spool = await PullHarness.StartAsync();

    public async Task DisposeAsync() => await _spool.DisposeAsync();

    private AzureClientViewStore Store() => new(_spool.Runtime.Storage, TimeProvider.System);

    private static List<string> Keys(int from, int count) =>
        Enumerable.Range(from, count).Select(i => $"m:{639_320_505_084_960_000L + i * 7919L:D19}-{i * 2654435761L % 0xffffffffL:x8}").ToList();

    private async Task<List<string>> RowKeysAsync(string mailbox, string client)
    {
        var rows = new List<string>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StorageNames.ViewPartition(mailbox, client)}");
        await foreach (var e in _spool.Runtime.Storage.Views.QueryAsync<TableEntity>(filter, select: ["RowKey"]))
            rows.Add(e.RowKey);
        return rows.Where(k => !k.StartsWith("h:", StringComparison.Ordinal)).ToList();
    }

    /// <summary>Rows as versions before chunks wrote them: one per hidden key.</summary>
    private async Task<List<string>> AddEarlierMarkersAsync(string client, List<string> keys)
    {
        foreach (var key in keys)
            await _spool.Runtime.Storage.Views.AddEntityAsync(new TableEntity(StorageNames.ViewPartition("box", client), key) { ["HiddenAt"] = DateTimeOffset.UtcNow });
        return keys;
    }

    [Fact]
    public void Keys_survive_their_encoding()
    {
        var keys = Keys(0, 2000);
        var encoded = AzureClientViewStore.EncodeKeys(keys);
        Assert.Equal(keys, AzureClientViewStore.DecodeKeys(encoded));
        Assert.True(encoded.Length < 64 * 1024, $"{encoded.Length} bytes");
        Assert.True(encoded.Length < keys.Count * 15, $"{encoded.Length} bytes for {keys.Count} keys");
        Assert.Empty(AzureClientViewStore.DecodeKeys(AzureClientViewStore.EncodeKeys([])));
        Assert.Empty(AzureClientViewStore.DecodeKeys([]));
    }

    [Fact]
    public async Task A_quit_hiding_thousands_of_messages_writes_a_row_per_chunk_and_they_read_back_exactly()
    {
        var store = Store();
        var keys = Keys(0, 5000);
        await store.HideAsync("box", "alice+laptop", keys, CancellationToken.None);
        await store.HideAsync("box", "alice+laptop", keys.Take(10).ToList(), CancellationToken.None); // a retried QUIT

        Assert.Equal(4, (await RowKeysAsync("box", "alice+laptop")).Count);
        Assert.Equal(keys.ToHashSet(), await Store().ListHiddenAsync("box", "alice+laptop", CancellationToken.None));
        Assert.Empty(await Store().ListHiddenAsync("box", "alice+phone", CancellationToken.None));
    }

    [Fact]
    public async Task Rows_of_earlier_versions_and_chunks_read_as_one_view_and_a_sweep_takes_keys_out_of_both()
    {
        var old = await AddEarlierMarkersAsync("bob", Keys(0, 5));
        var store = Store();
        var quit1 = Keys(5, 3);
        var quit2 = Keys(8, 2);
        await store.HideAsync("box", "bob", quit1, CancellationToken.None);
        await store.HideAsync("box", "bob", quit2, CancellationToken.None);
        Assert.Equal([.. old, .. quit1, .. quit2], (await store.ListHiddenAsync("box", "bob", CancellationToken.None)).Order(StringComparer.Ordinal));

        // Retention removed the oldest messages: two markers, one key of the first chunk, and all of the second.
        await store.ForgetAsync("box", "bob", [old[0], old[1], quit1[0], .. quit2, "m:not-hidden"], CancellationToken.None);
        Assert.Equal([old[2], old[3], old[4], quit1[1], quit1[2]], (await Store().ListHiddenAsync("box", "bob", CancellationToken.None)).Order(StringComparer.Ordinal));
        Assert.Equal(4, (await RowKeysAsync("box", "bob")).Count); // three markers and the first chunk
    }

    [Fact]
    public async Task Compaction_merges_a_view_of_many_quits_into_one_chunk_keeping_every_key()
    {
        var old = await AddEarlierMarkersAsync("carol", Keys(0, 4));
        var writer = Store();
        var hidden = new List<string>(old);
        for (var quit = 0; quit < AzureClientViewStore.CompactAbove + 6; quit++)
        {
            var keys = Keys(100 + quit * 3, 3);
            await writer.HideAsync("box", "carol", keys, CancellationToken.None);
            hidden.AddRange(keys);
        }
        var full = Keys(1000, AzureClientViewStore.KeysPerChunk);
        await writer.HideAsync("box", "carol", full, CancellationToken.None);
        hidden.AddRange(full);
        Assert.Equal(AzureClientViewStore.CompactAbove + 11, (await RowKeysAsync("box", "carol")).Count);

        // Nothing is read before the view was listed with many rows, and a view with few is left alone.
        var store = Store();
        Assert.Equal(0, await store.CompactAsync("box", "carol", CancellationToken.None));
        await store.HideAsync("box", "dave", Keys(0, 3), CancellationToken.None);
        await store.ListHiddenAsync("box", "dave", CancellationToken.None);
        Assert.Equal(0, await store.CompactAsync("box", "dave", CancellationToken.None));

        Assert.Equal(hidden.Count, (await store.ListHiddenAsync("box", "carol", CancellationToken.None)).Count);
        Assert.Equal(AzureClientViewStore.CompactAbove + 10, await store.CompactAsync("box", "carol", CancellationToken.None));
        Assert.Equal(2, (await RowKeysAsync("box", "carol")).Count); // the full chunk stays, the small rows became one
        Assert.Equal(hidden.ToHashSet(), await Store().ListHiddenAsync("box", "carol", CancellationToken.None));
        Assert.Equal(0, await store.CompactAsync("box", "carol", CancellationToken.None));
    }

    [Fact]
    public async Task A_writer_merges_the_small_rows_it_added_without_listing_the_view_and_leaves_full_chunks_unread()
    {
        var writer = Store();
        await writer.HideAsync("box", "frank", Keys(10_000, AzureClientViewStore.KeysPerChunk * 2), CancellationToken.None);
        for (var quit = 0; quit < AzureClientViewStore.CompactAbove; quit++)
            await writer.HideAsync("box", "frank", Keys(quit * 5, 5), CancellationToken.None);
        Assert.Equal(0, await writer.CompactAsync("box", "frank", CancellationToken.None));

        await writer.HideAsync("box", "frank", Keys(500, 5), CancellationToken.None);
        Assert.Equal(AzureClientViewStore.CompactAbove + 1, await writer.CompactAsync("box", "frank", CancellationToken.None));
        Assert.Equal(3, (await RowKeysAsync("box", "frank")).Count);
        Assert.Equal(AzureClientViewStore.KeysPerChunk * 2 + (AzureClientViewStore.CompactAbove + 1) * 5,
            (await Store().ListHiddenAsync("box", "frank", CancellationToken.None)).Count);
    }

    [Fact]
    public async Task The_views_of_a_mailbox_are_listed_by_name_and_no_other_mailbox_s()
    {
        var store = Store();
        await store.HideAsync("mail", "alice+phone", Keys(0, 2), CancellationToken.None);
        await store.HideAsync("mail", "odd:name/with%signs", Keys(2, 1), CancellationToken.None);
        await store.HideAsync("mail", "*", Keys(3, 1), CancellationToken.None);
        await AddEarlierMarkersAsync("bob", Keys(4, 2)); // a view of an earlier version, markers only (mailbox "box")
        await store.HideAsync("mail2", "alice+phone", Keys(5, 1), CancellationToken.None);
        await store.HideAsync("mai", "zed", Keys(6, 1), CancellationToken.None);
        await store.HideAsync("mail:x", "yan", Keys(7, 1), CancellationToken.None);

        Assert.Equal(["*", "alice+phone", "odd:name/with%signs"], await store.ListViewsAsync("mail", CancellationToken.None));
        Assert.Equal(["bob"], await store.ListViewsAsync("box", CancellationToken.None));
        Assert.Equal(["yan"], await store.ListViewsAsync("mail:x", CancellationToken.None));
        Assert.Empty(await store.ListViewsAsync("none", CancellationToken.None));
    }
}
