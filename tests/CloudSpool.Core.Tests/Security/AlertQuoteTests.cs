using CloudSpool.Core.Accounts;
using CloudSpool.Core.Health;
using CloudSpool.Core.Pull;

namespace CloudSpool.Core.Tests.Security;

/// <summary>
/// Issue 19, item 10: a health alert goes to the owner and the phone whatever the rules say; the upstream server's error
/// text in it is quoted bounded, escaped and marked as the server's words.
/// </summary>
public sealed class AlertQuoteTests
{
    private const string Hostile = SafeTextTests.Hostile;

    private static void NoControl(string text)
    {
        foreach (var c in text.Replace("\n", "", StringComparison.Ordinal))
            Assert.False(char.IsControl(c) || c is '\u202e' or '\u2028', $"U+{(int)c:X4} in: {text}");
    }

    [Fact]
    public void An_alert_quotes_the_server_bounded_escaped_and_marked_as_its_words()
    {
        var account = new AccountDefinition { Name = "isp", Host = "pop.example.net", Username = "me", PasswordRef = "env:CLOUDSPOOL_SECRET_ISP", Mailbox = "alice" };
        var now = new DateTimeOffset(2026, 12, 1, 18, 0, 0, TimeSpan.Zero);
        var serverText = "pop.example.net refused the login: -ERR " + Hostile + " Your password expired, log in at http://evil.example/ " + new string('A', 5000);
        var state = new AccountPullState { Account = "isp", FailureStreak = 5, LastAttempt = now, LastSuccess = now.AddHours(-3), LastError = serverText };
        var health = HealthEvaluator.Evaluate(account, state, now, new HealthThresholds(TimeSpan.FromHours(1), TimeSpan.FromDays(1)));
        Assert.Contains(HealthEvaluator.FailingCondition, health.Alerts);

        var text = HealthRunner.AlertText(health, HealthEvaluator.FailingCondition);
        NoControl(text);
        Assert.Contains("5 failed runs in a row, no success since 2026-12-01 15:00:00Z.", text, StringComparison.Ordinal);
        Assert.Contains("quoting the upstream server (the server's words, not CloudSpool's", text, StringComparison.Ordinal);
        var quote = Assert.Single(text.Split('\n'), l => l.StartsWith("> ", StringComparison.Ordinal));
        Assert.StartsWith("> pop.example.net refused the login: -ERR \\x1B]0;owned\\x07", quote, StringComparison.Ordinal);
        Assert.EndsWith("more characters cut]", quote, StringComparison.Ordinal);
        Assert.True(text.Length < 1500, $"{text.Length} characters");
        // The server's words appear once, quoted, never in CloudSpool's own sentences.
        Assert.Equal(2, text.Split("Your password expired").Length);

        // Mail to the owner and the phone: the alert's bytes carry no control character but the line ends.
        var mail = System.Text.Encoding.UTF8.GetString(AlertMail.Raised(new AlertRecord
        {
            Account = "isp", Condition = HealthEvaluator.FailingCondition, Mailbox = "alice", RaisedAt = now, Text = text,
        }));
        Assert.DoesNotContain('\u001b', mail);
        Assert.DoesNotContain('\u0007', mail);
        Assert.DoesNotContain("\r\r", mail, StringComparison.Ordinal);
    }
}
