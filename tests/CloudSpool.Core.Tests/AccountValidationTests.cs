using CloudSpool.Core.Accounts;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Core.Tests;

public sealed class AccountValidationTests
{
    private static readonly AccountValidator Validator = new(s => Cron.IsValid(s));

    private static AccountDefinition Valid() => new()
    {
        Name = "isp",
        Host = "pop.example.net",
        Username = "me",
        PasswordRef = "env:CLOUDSPOOL_SECRET_ISP",
        Mailbox = "alice",
    };

    [Fact]
    public void A_complete_account_is_valid()
    {
        Assert.True(Validator.Validate(Valid()).IsValid);
    }

    [Fact]
    public void Every_wrong_value_is_reported_with_its_property()
    {
        var bad = Valid() with
        {
            Name = "Bad Name",
            Mailbox = "",
            Host = "exa mple",
            Port = 70000,
            PasswordRef = "hunter2",
            Schedule = "every minute",
            TimeZone = "Mars/Olympus",
            Protocol = UpstreamProtocol.Imap,
            Folders = [],
        };
        var errors = Validator.Validate(bad).Errors.Select(e => e.PropertyName).ToHashSet();
        Assert.Superset(new HashSet<string> { "Name", "Mailbox", "Host", "Port", "PasswordRef", "Schedule", "TimeZone", "Folders" }, errors);
    }

    [Fact]
    public void A_password_itself_is_refused_and_the_message_says_why()
    {
        var result = Validator.Validate(Valid() with { PasswordRef = "secret" });
        var error = Assert.Single(result.Errors);
        Assert.Contains("never the password itself", error.ErrorMessage);
    }

    [Theory]
    [InlineData("keep", "keep")]
    [InlineData("delete", "delete")]
    [InlineData("delete-after=30", "delete-after=30")]
    [InlineData("delete-larger=5M", "delete-larger=5242880")]
    [InlineData("delete-after=7d, delete-larger=100K", "delete-after=7,delete-larger=102400")]
    public void Leave_policies_parse(string text, string canonical)
    {
        Assert.True(LeavePolicy.TryParse(text, out var policy, out var error), error);
        Assert.Equal(canonical, policy.ToString());
    }

    [Theory]
    [InlineData("remove")]
    [InlineData("delete-after=0")]
    [InlineData("delete-after=x")]
    [InlineData("delete-larger=-1")]
    public void Bad_leave_policies_are_refused_with_a_reason(string text)
    {
        Assert.False(LeavePolicy.TryParse(text, out _, out var error));
        Assert.Contains(text.Split(',')[0].Trim(), error);
    }

    [Fact]
    public void Leave_policy_decides_by_age_and_size()
    {
        var now = new DateTimeOffset(2026, 11, 28, 0, 0, 0, TimeSpan.Zero);
        var byAge = new LeavePolicy { DeleteAfterDays = 7 };
        Assert.False(byAge.ShouldDelete(now.AddDays(-6), 10, now));
        Assert.True(byAge.ShouldDelete(now.AddDays(-7), 10, now));
        var bySize = new LeavePolicy { DeleteLargerThan = 1000 };
        Assert.False(bySize.ShouldDelete(now, 1000, now));
        Assert.True(bySize.ShouldDelete(now, 1001, now));
        Assert.False(LeavePolicy.Keep.ShouldDelete(now.AddYears(-10), long.MaxValue, now));
    }
}
