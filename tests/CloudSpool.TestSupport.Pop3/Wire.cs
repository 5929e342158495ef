using System.Text;
using CloudSpool.Core.Ingest;

namespace CloudSpool.TestSupport.Pop3;

/// <summary>Reference computations, done the slow and obvious way, to check the server against.</summary>
public static class Wire
{
    public static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    public static string Text(byte[] bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>The RFC 1939 size as the spool records it at ingest.</summary>
    public static long Pop3Size(byte[] stored)
    {
        using var meter = new IngestMeter();
        meter.Append(stored);
        return meter.Complete().Pop3Size;
    }

    /// <summary>
    /// Splits stored bytes into lines, each ending at LF (the CR of a CRLF is not part of the line; a bare CR is); the
    /// last may have no end. With <paramref name="bareCrAsCrlf"/> (the rule before size rule 2) a bare CR ends a line too.
    /// </summary>
    public static List<(byte[] Content, bool Ended)> Lines(byte[] stored, bool bareCrAsCrlf = false)
    {
        var lines = new List<(byte[], bool)>();
        var current = new List<byte>();
        for (var i = 0; i < stored.Length; i++)
        {
            var b = stored[i];
            if (b == '\r' && i + 1 < stored.Length && stored[i + 1] == '\n')
            {
                i++;
                lines.Add((current.ToArray(), true));
                current.Clear();
            }
            else if (b == '\n' || (b == '\r' && bareCrAsCrlf))
            {
                lines.Add((current.ToArray(), true));
                current.Clear();
            }
            else
            {
                current.Add(b);
            }
        }
        if (current.Count > 0)
            lines.Add((current.ToArray(), false));
        return lines;
    }

    /// <summary>Every line end turned into CRLF (a bare CR stays unless <paramref name="bareCrAsCrlf"/>); nothing added at the end.</summary>
    public static byte[] NormalizeCrlf(byte[] stored, bool bareCrAsCrlf = false)
    {
        var output = new List<byte>();
        foreach (var (content, ended) in Lines(stored, bareCrAsCrlf))
        {
            output.AddRange(content);
            if (ended)
                output.AddRange("\r\n"u8.ToArray());
        }
        return [.. output];
    }

    /// <summary>What a client gets back after undoing the transfer: CRLF line ends, and a CRLF after a last line without one.</summary>
    public static byte[] AsReceived(byte[] stored)
    {
        var normalized = NormalizeCrlf(stored);
        return normalized.Length == 0 || normalized.AsSpan().EndsWith("\r\n"u8) ? normalized : [.. normalized, .. "\r\n"u8];
    }

    /// <summary>The multi-line body of RETR (RFC 1939 section 3) for a stored message, terminator included.</summary>
    public static byte[] RetrData(byte[] stored, bool bareCrAsCrlf = false) => Stuff(Lines(stored, bareCrAsCrlf).Select(l => l.Content));

    /// <summary>
    /// The multi-line body of TOP n k: header lines up to and including the first that is empty or starts with a bare CR
    /// (Dovecot 2.3's end of the header), then k lines.
    /// </summary>
    public static byte[] TopData(byte[] stored, int bodyLines, bool bareCrAsCrlf = false)
    {
        var lines = Lines(stored, bareCrAsCrlf).Select(l => l.Content).ToList();
        var blank = lines.FindIndex(l => l.Length == 0 || l[0] == '\r');
        var take = blank < 0 ? lines.Count : Math.Min(lines.Count, blank + 1 + bodyLines);
        return Stuff(lines.Take(take));
    }

    private static byte[] Stuff(IEnumerable<byte[]> lines)
    {
        var output = new List<byte>();
        foreach (var line in lines)
        {
            if (line.Length > 0 && line[0] == '.')
                output.Add((byte)'.');
            output.AddRange(line);
            output.AddRange("\r\n"u8.ToArray());
        }
        output.AddRange(".\r\n"u8.ToArray());
        return [.. output];
    }

    /// <summary>Undoes a multi-line body: strips the terminator and one stuffing dot per line.</summary>
    public static byte[] Unstuff(byte[] data)
    {
        if (!data.AsSpan().EndsWith(".\r\n"u8))
            throw new InvalidDataException("a multi-line body ends with the terminating line");
        var body = data[..^3];
        var output = new List<byte>();
        var atLineStart = true;
        for (var i = 0; i < body.Length; i++)
        {
            if (atLineStart && body[i] == '.')
            {
                if (i + 1 >= body.Length || body[i + 1] != '.')
                    throw new InvalidDataException("a line starting with '.' is stuffed");
                i++;
            }
            output.Add(body[i]);
            atLineStart = body[i] == '\n';
        }
        return [.. output];
    }
}
