using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;

namespace CloudSpool.Core.Tests.Pull;

/// <summary>A scope's listing compared with its seen ledger: what is fetched, deleted and learned.</summary>
public sealed class ListingReviewTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);

    private static UpstreamMessage Listed(string key, long size) => new(key, size, Handle: key);

    private static SeenEntry Seen(string key, long size, bool stored = true, int daysAgo = 1) =>
        new(key, Now.AddDays(-daysAgo), stored, stored ? "mk-" + key : null, size);

    private static ListingReview Review(IEnumerable<UpstreamMessage> listed, IEnumerable<SeenEntry> seen, LeavePolicy? leave = null) =>
        ListingReview.Of([.. listed], seen.ToDictionary(s => s.Key), leave ?? LeavePolicy.Keep, Now);

    [Fact]
    public void Messages_without_an_entry_are_fetched_in_listing_order()
    {
        var review = Review([Listed("c", 3), Listed("a", 1), Listed("b", 2)], [Seen("a", 1)]);
        Assert.Equal(["c", "b"], review.Unseen.Select(m => m.Key));
        Assert.Empty(review.Reused);
        Assert.Empty(review.StoredToDelete);
        Assert.Empty(review.Learned);
    }

    [Fact]
    public void A_key_listed_with_another_size_is_a_reused_key_and_fetched_as_new()
    {
        var review = Review([Listed("a", 100)], [Seen("a", 99)], new LeavePolicy { DeleteWhenStored = true });
        Assert.Equal(["a"], review.Unseen.Select(m => m.Key));
        var (message, entry) = Assert.Single(review.Reused);
        Assert.Equal((100, 99), (message.Size, entry.Size));
        // Never deleted: the message under that key now is not the one stored.
        Assert.Empty(review.StoredToDelete);
    }

    [Fact]
    public void Only_stored_messages_of_matching_size_that_the_policy_wants_gone_are_deleted()
    {
        var review = Review(
            [Listed("old", 10), Listed("young", 10), Listed("taken", 10)],
            [Seen("old", 10, daysAgo: 40), Seen("young", 10, daysAgo: 2), Seen("taken", 10, stored: false, daysAgo: 40)],
            new LeavePolicy { DeleteAfterDays = 30 });
        Assert.Equal(["old"], review.StoredToDelete.Select(m => m.Key));
        Assert.Empty(review.Unseen);
    }

    [Fact]
    public void An_imported_entry_without_a_size_matches_and_learns_the_listed_size()
    {
        var review = Review([Listed("imp", 4321)], [Seen("imp", SeenEntry.UnknownSize, stored: false)]);
        Assert.Empty(review.Unseen);
        var learned = Assert.Single(review.Learned);
        Assert.Equal(("imp", 4321L), (learned.Key, learned.Size));
    }
}
