using System.Security.Cryptography;

namespace CloudSpool.Core.Ingest;

/// <summary>
/// Figures computed once, at ingest, from a message's raw bytes as they stream past; readers
/// (the POP3 edge, the forward job) rely on them and never re-open the body to compute them.
/// </summary>
/// <param name="RawLength">Number of bytes stored.</param>
/// <param name="Pop3Size">
/// RFC 1939 octet count as the message goes out on the wire (size rule 2): every byte as stored, and a bare LF (one not
/// after a CR) as CRLF; a bare CR stays one octet (as Dovecot 2.3 counts and sends it). Dot-stuffing, the terminating
/// line and the CRLF added after a last line without LF are not counted. Rows written before rule 2 counted a bare CR as
/// CRLF too (see <see cref="SizeRule"/>).
/// </param>
/// <param name="Sha256">Lower-case hex SHA-256 of the raw bytes.</param>
/// <param name="BodySha256">Lower-case hex SHA-256 of the bytes after the header/body separator
/// (of an empty string when there is no body).</param>
public sealed record IngestFigures(long RawLength, long Pop3Size, string Sha256, string BodySha256)
{
    /// <summary>
    /// The rule <see cref="Pop3Size"/> is computed by, recorded with it: 2 counts a bare CR as one octet. Rule 1 (rows
    /// without a recorded rule) counted it as CRLF; its sizes equal rule 2's unless the message has a bare CR.
    /// </summary>
    public const int SizeRule = 2;
}

/// <summary>
/// Streams raw message bytes through the ingest computations in one pass, in bounded memory:
/// SHA-256 of the whole, SHA-256 of the body, and the RFC 1939 size.
/// </summary>
public sealed class IngestMeter : IDisposable
{
    private readonly IncrementalHash _raw = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly IncrementalHash _body = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _rawLength;
    private long _pop3Size;
    private bool _previousWasCr;
    private bool _inBody;
    // Header-end detection: true while the current line has had no byte other than a CR.
    private bool _lineEmptySoFar = true;

    /// <summary>Feeds the next chunk of raw bytes.</summary>
    public void Append(ReadOnlySpan<byte> chunk)
    {
        if (chunk.IsEmpty)
            return;
        _raw.AppendData(chunk);
        _rawLength += chunk.Length;
        CountPop3Octets(chunk);
        if (_inBody)
        {
            _body.AppendData(chunk);
            return;
        }

        // Still in the header: line by line until an empty line (LF, or CR LF; RFC 5322 section 2.1) ends it. A
        // message that starts with an empty line has no header at all.
        var rest = chunk;
        while (true)
        {
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            if (line.IndexOfAnyExcept((byte)'\r') >= 0)
                _lineEmptySoFar = false;
            if (end < 0)
                return;
            if (_lineEmptySoFar)
            {
                _inBody = true;
                _body.AppendData(rest[(end + 1)..]);
                return;
            }
            _lineEmptySoFar = true;
            rest = rest[(end + 1)..];
        }
    }

    /// <summary>Finishes the computations. The meter cannot be used afterwards.</summary>
    public IngestFigures Complete()
    {
        var raw = Convert.ToHexStringLower(_raw.GetHashAndReset());
        var body = Convert.ToHexStringLower(_body.GetHashAndReset());
        return new IngestFigures(_rawLength, _pop3Size, raw, body);
    }

    /// <summary>
    /// Every byte counts one octet on the wire, and a bare LF one more (it goes out as CRLF). Only LFs are looked at one
    /// by one; the runs between them are skipped with a vectorised search.
    /// </summary>
    private void CountPop3Octets(ReadOnlySpan<byte> chunk)
    {
        _pop3Size += chunk.Length;
        var rest = chunk;
        int at;
        while ((at = rest.IndexOf((byte)'\n')) >= 0)
        {
            if (!(at == 0 ? _previousWasCr : rest[at - 1] == (byte)'\r'))
                _pop3Size += 1; // a bare LF
            _previousWasCr = false;
            rest = rest[(at + 1)..];
        }
        if (!rest.IsEmpty)
            _previousWasCr = rest[^1] == (byte)'\r';
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _raw.Dispose();
        _body.Dispose();
    }
}
