using System.Text;

namespace CloudSpool.Upstream.Pop3;

/// <summary>A POP3 status reply: "+OK" or "-ERR" and the text after it (RFC 1939 section 3).</summary>
internal readonly record struct Pop3Reply(bool IsOk, string Text)
{
    /// <summary>Parses a status line; anything but +OK / -ERR is a protocol violation.</summary>
    public static Pop3Reply Parse(string line, string command)
    {
        if (TryParse(line, out var reply))
            return reply;
        throw new UpstreamPop3ProtocolException($"unexpected reply to {command}: \"{Printable(line)}\"");
    }

    public static bool TryParse(string line, out Pop3Reply reply)
    {
        // Status indicators are upper case in RFC 1939; some servers are lax about case, so compare without it.
        if (HasIndicator(line, "+OK"))
        {
            reply = new Pop3Reply(true, line.Length > 3 ? line[4..] : "");
            return true;
        }
        if (HasIndicator(line, "-ERR"))
        {
            reply = new Pop3Reply(false, line.Length > 4 ? line[5..] : "");
            return true;
        }
        reply = default;
        return false;
    }

    /// <summary>The extended response code in brackets at the start of the text (RFC 2449 section 8), e.g. "AUTH", "IN-USE", "SYS/TEMP".</summary>
    public string? ResponseCode
    {
        get
        {
            if (!Text.StartsWith('['))
                return null;
            var close = Text.IndexOf(']');
            return close > 1 ? Text[1..close].ToUpperInvariant() : null;
        }
    }

    /// <summary>The reply as the server wrote it, made safe for logs and status text (no control characters, bounded length).</summary>
    public override string ToString() => Printable((IsOk ? "+OK " : "-ERR ") + Text).TrimEnd();

    public static string Printable(string text)
    {
        const int limit = 300;
        var sb = new StringBuilder(Math.Min(text.Length, limit + 3));
        foreach (var c in text.Length > limit ? text[..limit] : text)
            sb.Append(char.IsControl(c) ? '?' : c);
        if (text.Length > limit)
            sb.Append("...");
        return sb.ToString();
    }

    private static bool HasIndicator(string line, string indicator) =>
        line.StartsWith(indicator, StringComparison.OrdinalIgnoreCase) && (line.Length == indicator.Length || line[indicator.Length] == ' ');
}
