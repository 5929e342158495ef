namespace CloudSpool.Edge.Tests;

/// <summary>
/// The edge's options: every rule of <see cref="SpoolEdgeOptionsValidator"/> refuses what it should, and the mirror's
/// check throws an ArgumentException listing every broken rule.
/// </summary>
public sealed class OptionsValidationTests
{
    /// <summary>For each property with a rule: options breaking it, and what the message says.</summary>
    private static readonly Dictionary<string, (SpoolEdgeOptions Options, string Message)> Cases = new()
    {
        ["CacheBytes"] = (new() { CacheBytes = -1 }, "CacheBytes must not be negative (was -1)"),
        ["CacheDiskShare"] = (new() { CacheDiskShare = 0 }, "CacheDiskShare must be in (0, 1] (was 0)"),
        ["CacheReserveBytes"] = (new() { CacheReserveBytes = -1 }, "CacheReserveBytes must not be negative (was -1)"),
        ["SyncInterval"] = (new() { SyncInterval = TimeSpan.Zero }, "SyncInterval must be positive (was 00:00:00)"),
        ["ReconcileInterval"] = (new() { ReconcileInterval = TimeSpan.FromMinutes(-1) }, "ReconcileInterval must be positive (was -00:01:00)"),
        ["StorageTimeout"] = (new() { StorageTimeout = TimeSpan.Zero }, "StorageTimeout must be positive (was 00:00:00)"),
        ["ReadAheadMessages"] = (new() { ReadAheadMessages = -1 }, "ReadAheadMessages must not be negative (was -1)"),
        ["ReadAheadFetches"] = (new() { ReadAheadFetches = 0 }, "ReadAheadFetches must be at least 1 (was 0)"),
        ["Lookback"] = (new() { Lookback = TimeSpan.FromSeconds(-1) }, "Lookback must not be negative (was -00:00:01)"),
    };

    public static TheoryData<string> Rules => [.. Cases.Keys];

    [Fact]
    public void The_cases_cover_every_rule_and_the_defaults_break_none()
    {
        var validator = new SpoolEdgeOptionsValidator();
        Assert.Equal(validator.Select(r => r.PropertyName).Order(StringComparer.Ordinal), Cases.Keys.Order(StringComparer.Ordinal));
        Assert.True(validator.Validate(new SpoolEdgeOptions()).IsValid);
        Assert.True(validator.Validate(new SpoolEdgeOptions { CacheBytes = null, CacheDiskShare = 1, Lookback = TimeSpan.Zero, ReadAheadMessages = 0 }).IsValid);
    }

    [Theory]
    [MemberData(nameof(Rules))]
    public void Each_rule_refuses_its_bad_value(string property)
    {
        var (options, message) = Cases[property];
        var failure = Assert.Single(new SpoolEdgeOptionsValidator().Validate(options).Errors);
        Assert.Equal(property, failure.PropertyName);
        Assert.Equal(message, failure.ErrorMessage);
        var error = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Equal("invalid edge options: " + message, error.Message);
    }

    [Fact]
    public void Every_broken_rule_is_listed_at_once()
    {
        var options = new SpoolEdgeOptions { CacheBytes = -1, CacheDiskShare = 1.5, SyncInterval = TimeSpan.Zero, ReadAheadFetches = 0, Lookback = TimeSpan.FromSeconds(-1) };
        var error = Assert.Throws<ArgumentException>(options.Validate);
        foreach (var part in new[] { "CacheBytes must not be negative", "CacheDiskShare must be in (0, 1] (was 1.5)", "SyncInterval must be positive",
                     "ReadAheadFetches must be at least 1", "Lookback must not be negative" })
            Assert.Contains(part, error.Message, StringComparison.Ordinal);
    }
}
