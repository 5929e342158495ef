namespace CloudSpool.Upstream.Pop3;

/// <summary>What the server announced with CAPA (RFC 2449 section 5); <see cref="Unknown"/> for a server without CAPA.</summary>
internal sealed record UpstreamPop3Capabilities
{
    public static readonly UpstreamPop3Capabilities Unknown = new();

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

    public static UpstreamPop3Capabilities Parse(IEnumerable<string> lines)
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

        return new UpstreamPop3Capabilities
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
