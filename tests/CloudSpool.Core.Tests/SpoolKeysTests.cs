using CloudSpool.Core.Spool;

namespace CloudSpool.Core.Tests;

public sealed class SpoolKeysTests
{
    private const string Sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Fact]
    public void Keys_sort_by_commit_time_and_carry_it()
    {
        var early = SpoolKeys.Message(638_000_000_000_000_000, Sha);
        var late = SpoolKeys.Message(638_000_000_000_000_001, "ff" + Sha[2..]);
        Assert.Equal("m:0638000000000000000-01234567", early);
        Assert.True(string.CompareOrdinal(early, late) < 0);
        Assert.True(SpoolKeys.TryGetTicks(late, out var ticks));
        Assert.Equal(638_000_000_000_000_001, ticks);
        Assert.False(SpoolKeys.TryGetTicks("d:whatever", out _));
        Assert.False(SpoolKeys.TryGetTicks("m:12", out _));
    }

    [Fact]
    public void Rewind_gives_a_position_before_every_key_of_the_window()
    {
        var now = new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);
        var newest = SpoolKeys.Message(now.UtcTicks, Sha);
        var from = SpoolKeys.Rewind(newest, TimeSpan.FromMinutes(5))!;
        var insideWindow = SpoolKeys.Message(now.AddMinutes(-4).UtcTicks, Sha);
        var beforeWindow = SpoolKeys.Message(now.AddMinutes(-6).UtcTicks, Sha);
        Assert.True(string.CompareOrdinal(insideWindow, from) > 0);
        Assert.True(string.CompareOrdinal(beforeWindow, from) < 0);
        Assert.Equal(newest, SpoolKeys.Rewind(newest, TimeSpan.Zero));
        Assert.Null(SpoolKeys.Rewind(SpoolKeys.Message(100, Sha), TimeSpan.FromTicks(100)));
        Assert.Null(SpoolKeys.Rewind("not a key", TimeSpan.FromMinutes(1)));
    }
}
