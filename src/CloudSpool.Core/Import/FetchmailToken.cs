namespace CloudSpool.Core.Import;

/// <summary>A word or string of a fetchmailrc, with its line; <see cref="Quoted"/> strings are never keywords.</summary>
public sealed record FetchmailToken(string Text, bool Quoted, int Line)
{
    /// <summary>Whether this is the keyword <paramref name="word"/> (unquoted, any case).</summary>
    public bool Is(string word) => !Quoted && string.Equals(Text, word, StringComparison.OrdinalIgnoreCase);

    public string Keyword => Quoted ? Text : Text.ToLowerInvariant();
}
