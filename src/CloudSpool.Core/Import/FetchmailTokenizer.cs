using System.Globalization;
using System.Text;

namespace CloudSpool.Core.Import;

/// <summary>
/// Splits a fetchmailrc into words and strings as fetchmail's lexer does: '#' starts a comment, the punctuation
/// ':', ';' and ',' and the noise words <c>and with has wants options here there</c> are ignored, strings are in
/// double or single quotes (up to the next quote of the kind) with backslash escapes (\n, \t, \xHH, \ooo, \c).
/// </summary>
public static class FetchmailTokenizer
{
    private static readonly HashSet<string> NoiseWords = new(StringComparer.OrdinalIgnoreCase) { "and", "with", "has", "wants", "options", "here", "there" };

    public static IReadOnlyList<FetchmailToken> Tokenize(string text, string file)
    {
        var tokens = new List<FetchmailToken>();
        var line = 1;
        var i = 0;
        while (i < text.Length)
        {
            var c = text[i];
            if (c == '\n')
            {
                line++;
                i++;
            }
            else if (char.IsWhiteSpace(c) || c is ',' or ':' or ';')
            {
                i++;
            }
            else if (c == '#')
            {
                while (i < text.Length && text[i] != '\n')
                    i++;
            }
            else if (c is '"' or '\'')
            {
                var start = line;
                tokens.Add(new FetchmailToken(ReadString(text, ref i, ref line, file), Quoted: true, start));
            }
            else
            {
                var begin = i;
                while (i < text.Length && !char.IsWhiteSpace(text[i]) && text[i] is not (',' or ':' or ';' or '"' or '\''))
                    i++;
                var word = text[begin..i];
                if (!NoiseWords.Contains(word))
                    tokens.Add(new FetchmailToken(word, Quoted: false, line));
            }
        }
        return tokens;
    }

    /// <summary>
    /// A string ends at the next quote of its kind, as in fetchmail's lexer (so it cannot hold that quote; a password with
    /// a double quote is written in single quotes); backslash escapes in it are undone afterwards.
    /// </summary>
    private static string ReadString(string text, ref int i, ref int line, string file)
    {
        var quote = text[i];
        var end = text.IndexOf(quote, i + 1);
        if (end < 0)
            throw new ImportException(file, line, $"the string opened with {quote} here is never closed");
        var raw = text[(i + 1)..end];
        line += raw.Count(c => c == '\n');
        i = end + 1;
        return Unescape(raw);
    }

    private static string Unescape(string raw)
    {
        var sb = new StringBuilder(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (c != '\\' || i + 1 >= raw.Length)
            {
                sb.Append(c);
                continue;
            }
            var e = raw[++i];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case 'b': sb.Append('\b'); break;
                case 'x' or 'X':
                    var hex = 0;
                    for (var n = 0; n < 2 && i + 1 < raw.Length && char.IsAsciiHexDigit(raw[i + 1]); n++)
                        hex = (hex * 16) + int.Parse(raw.AsSpan(++i, 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                    sb.Append((char)hex);
                    break;
                case >= '0' and <= '7':
                    var octal = e - '0';
                    for (var n = 0; n < 2 && i + 1 < raw.Length && raw[i + 1] is >= '0' and <= '7'; n++)
                        octal = (octal * 8) + (raw[++i] - '0');
                    sb.Append((char)octal);
                    break;
                default:
                    sb.Append(e);
                    break;
            }
        }
        return sb.ToString();
    }
}
