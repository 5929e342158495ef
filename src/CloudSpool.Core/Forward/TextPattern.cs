using System.Text.RegularExpressions;

namespace CloudSpool.Core.Forward;

/// <summary>
/// A rule's text condition: <c>re:EXPRESSION</c> (regular expression, case-insensitive, with a time limit), a wildcard
/// when it holds <c>*</c> or <c>?</c> (matches the whole value), else a case-insensitive substring.
/// </summary>
public sealed class TextPattern
{
    /// <summary>Longest time one regular expression may take on one value; a hostile subject cannot stall the job.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(200);

    private const string RegexPrefix = "re:";
    private readonly Regex? _regex;
    private readonly string _text;

    private TextPattern(string text, Regex? regex)
    {
        _text = text;
        _regex = regex;
    }

    /// <summary>Parses a pattern; throws <see cref="ArgumentException"/> with the reason when it is empty or a bad expression.</summary>
    public static TextPattern Parse(string pattern)
    {
        if (string.IsNullOrEmpty(pattern))
            throw new ArgumentException("the pattern is empty");
        const RegexOptions options = RegexOptions.IgnoreCase | RegexOptions.CultureInvariant;
        if (pattern.StartsWith(RegexPrefix, StringComparison.Ordinal))
        {
            var expression = pattern[RegexPrefix.Length..];
            if (expression.Length == 0)
                throw new ArgumentException("the regular expression after 're:' is empty");
            return new TextPattern(pattern, new Regex(expression, options, MatchTimeout));
        }
        if (pattern.AsSpan().IndexOfAny('*', '?') >= 0)
        {
            var wildcard = "^" + Regex.Escape(pattern).Replace(@"\*", ".*", StringComparison.Ordinal).Replace(@"\?", ".", StringComparison.Ordinal) + "$";
            return new TextPattern(pattern, new Regex(wildcard, options | RegexOptions.Singleline, MatchTimeout));
        }
        return new TextPattern(pattern, null);
    }

    /// <summary>The reason <paramref name="pattern"/> is not valid, or null.</summary>
    public static string? Problem(string? pattern)
    {
        try
        {
            Parse(pattern!);
            return null;
        }
        catch (ArgumentException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>Whether one of <paramref name="values"/> matches. Throws <see cref="RegexMatchTimeoutException"/> when an expression runs too long.</summary>
    public bool Matches(IEnumerable<string?> values) =>
        values.Any(v => v is not null && (_regex?.IsMatch(v) ?? v.Contains(_text, StringComparison.OrdinalIgnoreCase)));

    public override string ToString() => _text;
}
