using Azure;
using Azure.Data.Tables;
using CloudSpool.Storage.Azure;

namespace CloudSpool.Storage.Azure.Tests;

/// <summary>The stored formats of segments: their index, their removed members, and the dedup buckets.</summary>
public sealed class SpoolSegmentTests
{
    private static string Hex(char c, int length = 64) => new(c, length);

    private static readonly SegmentPack Pack = new("box/packs/20261205/0123456789abcdef0123456789abcdef.pack", "m:0639320505084969038-aaaaaaaa", "m:0639320505084969090-bbbbbbbb");

    private static readonly SegmentMember[] Members =
    [
        new(639320505084969038, Hex('a'), Hex('1', 40), 1234, 1250, 0, 0),
        new(639320505084969039, Hex('b'), Hex('2', 40), 5_000_000, 5_100_000, -1, 0),
        new(639320505084969090, "0f" + Hex('e', 62), "9" + Hex('0', 39), 0, 0, 0, 1234),
    ];

    [Fact]
    public void An_index_reads_back_member_for_member_with_its_packs_and_size_rule()
    {
        var encoded = SegmentIndex.Encode(2, [Pack], Members);

        var (rule, packs, members) = SegmentIndex.Decode(encoded);

        Assert.Equal(2, rule);
        Assert.Equal([Pack], packs);
        Assert.Equal(Members, members);
        Assert.Equal("m:0639320505084969090-0feeeeee", members[2].MessageKey);
    }

    [Fact]
    public void A_member_costs_under_80_bytes_of_index()
    {
        var members = Enumerable.Range(0, 49)
            .Select(i => new SegmentMember(639320505084969038 + i * 37, i.ToString("x2") + Hex('c', 62), i.ToString("x2") + Hex('d', 38), 20_000 + i, 20_400 + i, 0, i * 20_000L))
            .ToList();

        var encoded = SegmentIndex.Encode(2, [Pack], members);

        Assert.InRange((encoded.Length - 200) / 49.0, 1, 80);
    }

    [Fact]
    public void Members_out_of_key_order_or_hashes_not_in_lower_case_hex_are_refused()
    {
        Assert.Throws<ArgumentException>(() => SegmentIndex.Encode(2, [Pack], [Members[1], Members[0]]));
        Assert.Throws<ArgumentException>(() => SegmentIndex.Encode(2, [Pack], [Members[0] with { Sha256 = Hex('A') }]));
        Assert.Throws<ArgumentException>(() => SegmentIndex.Encode(2, [Pack], [Members[0] with { DedupPrefix = "abc" }]));
    }

    [Fact]
    public void A_damaged_index_is_refused_with_the_reason_never_read_as_other_members()
    {
        var encoded = SegmentIndex.Encode(2, [Pack], Members);

        Assert.Contains("unknown format", Assert.Throws<InvalidDataException>(() => SegmentIndex.Decode([9, .. encoded[1..]])).Message);
        Assert.Throws<InvalidDataException>(() => SegmentIndex.Decode(encoded[..^3]));
        Assert.Contains("after its last member", Assert.Throws<InvalidDataException>(() => SegmentIndex.Decode([.. encoded, 0])).Message);
        Assert.Throws<InvalidDataException>(() => SegmentIndex.Decode([]));
    }

    [Fact]
    public void Removed_members_read_back_as_removed()
    {
        var bits = SegmentIndex.EncodeGone([0, 8, 48], 49);

        Assert.Equal(7, bits.Length);
        Assert.Equal([0, 8, 48], SegmentIndex.DecodeGone(bits).Order());
        Assert.Empty(SegmentIndex.DecodeGone(null));
    }

    [Fact]
    public void A_dedup_entry_names_the_message_that_holds_the_key()
    {
        var dedupKey = "abc" + Hex('4', 61);
        var messageKey = "m:0639320505084969038-0feeeeee";
        var entries = new[] { DedupBuckets.Entry("abc" + Hex('5', 61), "m:0639320505084969000-00000000"), DedupBuckets.Entry(dedupKey, messageKey) }
            .SelectMany(e => e).ToArray();

        Assert.Equal("abc", DedupBuckets.BucketOf(dedupKey));
        Assert.Equal(messageKey, DedupBuckets.Find(entries, DedupBuckets.KeyOf(dedupKey)));
        Assert.Null(DedupBuckets.Find(entries, DedupBuckets.KeyOf("abc" + Hex('6', 61))));
        Assert.Throws<ArgumentException>(() => DedupBuckets.Entry(dedupKey, "d:not-a-message-key"));
    }

    private static byte[] EntryOf(int i) => DedupBuckets.Entry($"abc{i:x8}" + Hex('0', 53), $"m:{639320505084969038 + i:D19}-0000{i % 0x10000:x4}");

    [Fact]
    public void Entries_fill_the_last_bucket_row_then_new_rows_of_at_most_the_row_capacity()
    {
        var full = Enumerable.Range(0, DedupBuckets.RowCapacity - 2).SelectMany(EntryOf).ToArray();
        var rows = new List<DedupIndex.Row> { new(DedupBuckets.RowKey("abc", 0), new ETag("e0"), full) };
        var written = new List<DedupIndex.Row>();

        var actions = DedupIndex.AddActions("box", "abc", rows, Enumerable.Range(1000, 2 + DedupBuckets.RowCapacity + 1).Select(EntryOf).ToList(), written);

        Assert.Equal([TableTransactionActionType.UpdateReplace, TableTransactionActionType.Add, TableTransactionActionType.Add], actions.Select(a => a.ActionType));
        Assert.Equal(new ETag("e0"), actions[0].ETag); // only if nobody changed the row since it was read
        Assert.Equal(["b:abc:0000", "b:abc:0001", "b:abc:0002"], written.Select(r => r.RowKey));
        Assert.Equal([DedupBuckets.RowCapacity, DedupBuckets.RowCapacity, 1], written.Select(r => r.Entries.Length / DedupBuckets.EntryBytes));
        Assert.Equal(EntryOf(1000 + 2 + DedupBuckets.RowCapacity), written[2].Entries);
    }

    [Fact]
    public void Removing_takes_only_the_entry_naming_that_message_and_deletes_a_row_it_empties()
    {
        var one = EntryOf(1);
        var two = EntryOf(2);
        var rows = new List<DedupIndex.Row> { new("b:abc:0000", new ETag("e0"), [.. one, .. two]), new("b:abc:0001", new ETag("e1"), EntryOf(3)) };
        var key2 = $"abc{2:x8}" + Hex('0', 53);

        var written = new List<DedupIndex.Row>();
        var update = DedupIndex.RemoveAction("box", rows, key2, DedupBuckets.Find(two, DedupBuckets.KeyOf(key2))!, written);
        Assert.Equal(TableTransactionActionType.UpdateReplace, update!.ActionType);
        Assert.Equal(one, written[0].Entries);

        var key3 = $"abc{3:x8}" + Hex('0', 53);
        written.Clear();
        var delete = DedupIndex.RemoveAction("box", rows, key3, DedupBuckets.Find(EntryOf(3), DedupBuckets.KeyOf(key3))!, written);
        Assert.Equal(TableTransactionActionType.Delete, delete!.ActionType);
        Assert.Equal(new ETag("e1"), delete.ETag);
        Assert.Equal(["b:abc:0000"], written.Select(r => r.RowKey));

        // A duplicate's removal leaves the entry of the message that holds the key.
        Assert.Null(DedupIndex.RemoveAction("box", rows, key2, "m:0639320505084969999-ffffffff", []));
    }
}
