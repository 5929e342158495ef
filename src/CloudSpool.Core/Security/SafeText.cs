using System.Globalization;
using System.Text;

namespace CloudSpool.Core.Security;

/// <summary>
/// Makes text that others wrote (subjects, senders, login names, upstream servers' error texts) safe to show on a
/// terminal, in a log line or in a mail: every control character is shown escaped instead of acting. One helper, used
/// where text leaves CloudSpool for a person (CLI text output, the log formatter, alert mail); JSON output is escaped by
/// its serializer.
/// </summary>
/// <remarks>
/// Escaped: C0 controls (<c>\n</c>, <c>\r</c>, <c>\t</c>, others as <c>\xHH</c>: ESC is <c>\x1B</c>), DEL, C1 controls
/// (U+0080-U+009F: U+009B is a one-byte CSI to some terminals), the line and paragraph separators, the bidirectional
/// formatting characters (which make a terminal or a mail reader show text in another order than it is) and lone
/// surrogates, each as <c>\uHHHH</c>. Everything else, backslashes included, is left as it is.
/// </remarks>
public static class SafeText
{
    /// <summary>The text with every control character escaped; the same string when there is none.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return "";
        var first = FirstUnsafe(text);
        if (first < 0)
            return text;
        var b = new StringBuilder(text.Length + 16);
        b.Append(text, 0, first);
        for (var i = first; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                b.Append(c).Append(text[++i]);
                continue;
            }
            if (!IsUnsafe(c))
            {
                b.Append(c);
                continue;
            }
            switch (c)
            {
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                default:
                    b.Append(c < 0x80
                        ? string.Create(CultureInfo.InvariantCulture, $"\\x{(int)c:X2}")
                        : string.Create(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}"));
                    break;
            }
        }
        return b.ToString();
    }

    /// <summary>
    /// Someone else's words, bounded and escaped for quoting: at most <paramref name="maxChars"/> characters of the
    /// original (never half a surrogate pair), then a note of how much was cut.
    /// </summary>
    public static string Quote(string? text, int maxChars)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxChars);
        text ??= "";
        if (text.Length <= maxChars)
            return Escape(text);
        var cut = char.IsHighSurrogate(text[maxChars - 1]) ? maxChars - 1 : maxChars;
        return Escape(text[..cut]) + string.Create(CultureInfo.InvariantCulture, $" [... {text.Length - cut} more characters cut]");
    }

    /// <summary>Whether showing the text as it is could move the cursor, clear a screen, forge a line or reorder text.</summary>
    public static bool NeedsEscaping(string? text) => text is not null && FirstUnsafe(text) >= 0;

    private static int FirstUnsafe(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
                continue;
            }
            if (IsUnsafe(c))
                return i;
        }
        return -1;
    }

    private static bool IsUnsafe(char c) =>
        c < '\u0020' || c is >= '\u007F' and <= '\u009F'
        || c is '\u061C' or '\u200E' or '\u200F' or '\u2028' or '\u2029' or >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069'
        || char.IsSurrogate(c);
}
