using CloudSpool.Host.Cli;

namespace CloudSpool.Host.Tests;

public sealed class ForwardUntilTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 28, 10, 0, 0, TimeSpan.Zero); // 19:00 in Tokyo
    private static readonly TimeZoneInfo Tokyo = TimeZoneInfo.FindSystemTimeZoneById("Asia/Tokyo");

    [Theory]
    [InlineData("3h", "2026-11-28T13:00:00+00:00")]
    [InlineData("90m", "2026-11-28T11:30:00+00:00")]
    [InlineData("2d", "2026-11-30T10:00:00+00:00")]
    [InlineData("21:00", "2026-11-28T21:00:00+09:00")]        // later today in the zone
    [InlineData("08:30", "2026-11-29T08:30:00+09:00")]        // already past today: tomorrow
    [InlineData("2026-12-01T18:00", "2026-12-01T18:00:00+09:00")]
    [InlineData("2026-12-01T18:00+01:00", "2026-12-01T18:00:00+01:00")]
    public void Until_accepts_times_of_day_local_and_absolute_times_and_durations(string text, string expected)
    {
        Assert.True(ForwardCommands.TryParseUntil(text, Now, Tokyo, out var until));
        Assert.Equal(DateTimeOffset.Parse(expected, System.Globalization.CultureInfo.InvariantCulture), until);
    }

    [Theory]
    [InlineData("yesterday")]
    [InlineData("0h")]
    [InlineData("2026-11-01T18:00")]
    [InlineData("25:00")]
    public void Until_refuses_nonsense_and_the_past(string text) =>
        Assert.False(ForwardCommands.TryParseUntil(text, Now, Tokyo, out _));
}
