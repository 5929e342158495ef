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
        throw new Pop3ProtocolException($"unexpected reply to {command}: \"{Printable(line)}\"");
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

/// <summary>What the server announced with CAPA (RFC 2449 section 5); <see cref="Unknown"/> for a server without CAPA.</summary>
internal sealed record Pop3Capabilities
{
    public static readonly Pop3Capabilities Unknown = new();

    /// <summary>True when the server answered CAPA with +OK.</summary>
    public bool Known { get; init; }

    /// <summary>SASL mechanisms offered (RFC 5034 section 6), upper case.</summary>
    public IReadOnlySet<string> SaslMechanisms { get; init; } = new HashSet<string>();

    /// <summary>RFC 2449 section 6.6: commands may be sent without waiting for each reply.</summary>
    public bool Pipelining { get; init; }
    public bool Uidl { get; init; }
    public bool Top { get; init; }
    public bool Stls { get; init; }
    public bool User { get; init; }
    public bool ResponseCodes { get; init; }

    public static Pop3Capabilities Parse(IEnumerable<string> lines)
    {
        var sasl = new HashSet<string>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in lines)
        {
            var tokens = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0)
                continue;
            var name = tokens[0].ToUpperInvariant();
            names.Add(name);
            if (name == "SASL")
            {
                foreach (var mechanism in tokens.Skip(1))
                    sasl.Add(mechanism.ToUpperInvariant());
            }
        }

        return new Pop3Capabilities
        {
            Known = true,
            SaslMechanisms = sasl,
            Pipelining = names.Contains("PIPELINING"),
            Uidl = names.Contains("UIDL"),
            Top = names.Contains("TOP"),
            Stls = names.Contains("STLS"),
            User = names.Contains("USER"),
            ResponseCodes = names.Contains("RESP-CODES"),
        };
    }

    public override string ToString() => !Known ? "(no CAPA)" :
        string.Join(' ', new[] { Pipelining ? "PIPELINING" : null, Uidl ? "UIDL" : null, Top ? "TOP" : null, Stls ? "STLS" : null, User ? "USER" : null, ResponseCodes ? "RESP-CODES" : null }
            .OfType<string>().Concat(SaslMechanisms.Count > 0 ? ["SASL " + string.Join(' ', SaslMechanisms.Order(StringComparer.Ordinal))] : []));
}

/// <summary>A command sent and waiting for its reply, in the order of the wire (RFC 2449 section 6.6).</summary>
/// <param name="Verb">RETR, DELE, LIST, ...; never the arguments of a login command.</param>
/// <param name="Number">Message number argument, 0 when none.</param>
/// <param name="Multiline">Whether a +OK reply is followed by multi-line data.</param>
/// <param name="AnnouncedSize">For RETR, the size from LIST: bounds how much is requested ahead.</param>
/// <param name="Tag">What the caller needs to match the reply to its request.</param>
/// <param name="Extra">Arguments after the message number (TOP's line count).</param>
internal sealed record Pop3Command(string Verb, int Number, bool Multiline, long AnnouncedSize = 0, object? Tag = null, string? Extra = null)
{
    public string Line => (Number > 0 ? $"{Verb} {Number.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : Verb)
        + (Extra is null ? "" : " " + Extra);

    /// <summary>True for the commands whose data is a message or part of one.</summary>
    public bool CarriesMessageData => Verb is "RETR" or "TOP";

    /// <summary>Verb and message number only: never the arguments of USER, PASS or APOP.</summary>
    public override string ToString() => Number > 0 ? $"{Verb} {Number.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : Verb;
}
