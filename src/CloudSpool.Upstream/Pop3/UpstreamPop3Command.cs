namespace CloudSpool.Upstream.Pop3;

/// <summary>A command sent and waiting for its reply, in the order of the wire (RFC 2449 section 6.6).</summary>
/// <param name="Verb">RETR, DELE, LIST, ...; never the arguments of a login command.</param>
/// <param name="Number">Message number argument, 0 when none.</param>
/// <param name="Multiline">Whether a +OK reply is followed by multi-line data.</param>
/// <param name="AnnouncedSize">For RETR, the size from LIST: bounds how much is requested ahead.</param>
/// <param name="Tag">What the caller needs to match the reply to its request.</param>
/// <param name="Extra">Arguments after the message number (TOP's line count).</param>
internal sealed record UpstreamPop3Command(string Verb, int Number, bool Multiline, long AnnouncedSize = 0, object? Tag = null, string? Extra = null)
{
    public string Line => (Number > 0 ? $"{Verb} {Number.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : Verb)
        + (Extra is null ? "" : " " + Extra);

    /// <summary>True for the commands whose data is a message or part of one.</summary>
    public bool CarriesMessageData => Verb is "RETR" or "TOP";

    /// <summary>Verb and message number only: never the arguments of USER, PASS or APOP.</summary>
    public override string ToString() => Number > 0 ? $"{Verb} {Number.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : Verb;
}
