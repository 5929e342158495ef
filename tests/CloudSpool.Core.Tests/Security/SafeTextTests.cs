using CloudSpool.Core.Security;
using CloudSpool.Host.Logging;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Tests.Security;

/// <summary>
/// Issue 19, item 9: others' words (subjects, senders, login names, servers' error texts) never act on a terminal or
/// forge a log line.
/// </summary>
public sealed class SafeTextTests
{
    internal const string Hostile = "\u001b]0;owned\u0007\u001b[2J\rCR\nLF\tTAB\u007fDEL\u009b31mC1\u202eevil\u2028sep";

    private static void NoControl(string text, bool lineEnds = false)
    {
        foreach (var c in lineEnds ? text.Replace("\n", "", StringComparison.Ordinal) : text)
            Assert.False(char.IsControl(c) || c is '\u202e' or '\u2028', $"U+{(int)c:X4} in: {text}");
    }

    [Fact]
    public void Control_characters_are_shown_escaped_and_everything_else_kept()
    {
        var escaped = SafeText.Escape(Hostile);
        NoControl(escaped);
        Assert.Equal("\\x1B]0;owned\\x07\\x1B[2J\\rCR\\nLF\\tTAB\\x7FDEL\\u009B31mC1\\u202Eevil\\u2028sep", escaped);
        const string Plain = "Re: 会議 📅 C:\\path \"quoted\" — ok";
        Assert.Same(Plain, SafeText.Escape(Plain));
        Assert.Equal("\\uD800x", SafeText.Escape("\ud800x")); // a lone surrogate
        Assert.Equal("", SafeText.Escape(null));
    }

    [Fact]
    public void A_quote_is_bounded_without_splitting_a_character()
    {
        Assert.Equal("abc", SafeText.Quote("abc", 10));
        var quoted = SafeText.Quote(new string('x', 9) + "📅" + new string('y', 500), 10);
        Assert.StartsWith(new string('x', 9) + " [... 502 more characters cut]", quoted, StringComparison.Ordinal);
        Assert.Equal("\\x1B [... 1 more characters cut]", SafeText.Quote("\u001b[", 1));
    }

    [Fact]
    public void Every_log_line_escapes_the_message_and_the_exception()
    {
        var line = SafeConsoleFormatter.Format(new DateTimeOffset(2026, 12, 1, 18, 0, 0, TimeSpan.Zero), LogLevel.Warning, "CloudSpool.Edge",
            3, "login failed for user " + Hostile, new InvalidOperationException("server said " + Hostile));
        Assert.StartsWith("2026-12-01 18:00:00 warn: CloudSpool.Edge[3] login failed for user \\x1B]0;owned\\x07", line, StringComparison.Ordinal);
        Assert.EndsWith(Environment.NewLine, line, StringComparison.Ordinal);
        NoControl(line[..^Environment.NewLine.Length]);
        Assert.Contains("System.InvalidOperationException: server said \\x1B]0;owned", line, StringComparison.Ordinal);
    }
}
