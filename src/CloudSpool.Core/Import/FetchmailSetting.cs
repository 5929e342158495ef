namespace CloudSpool.Core.Import;

/// <summary>One keyword of a fetchmailrc poll with its values (<c>no KEYWORD</c>: <see cref="Negated"/>).</summary>
public sealed record FetchmailSetting(string Keyword, IReadOnlyList<string> Values, bool Negated, int Line)
{
    public string Value => Values.Count > 0 ? Values[0] : "";

    /// <summary>As written, for a report (a password never: its value is left out).</summary>
    public string Text => Keyword is "password" or "pass" or "esmtppassword"
        ? Keyword + " ***"
        : (Negated ? "no " : "") + Keyword + string.Concat(Values.Select(v => " " + (v.Any(char.IsWhiteSpace) || v.Length == 0 ? $"\"{v}\"" : v)));
}
