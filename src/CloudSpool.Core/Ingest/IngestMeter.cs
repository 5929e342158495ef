using System.Security.Cryptography;

namespace CloudSpool.Core.Ingest;

/// <summary>
/// Figures computed once, at ingest, from a message's raw bytes as they stream past; readers
/// (the POP3 edge, the forward job) rely on them and never re-open the body to compute them.
/// </summary>
/// <param name="RawLength">Number of bytes stored.</param>
/// <param name="Pop3Size">
/// RFC 1939 octet count as the message goes out on the wire: every bare LF or bare CR counts as
/// CRLF (as Dovecot does); dot-stuffing and the terminating line are not counted.
/// </param>
/// <param name="Sha256">Lower-case hex SHA-256 of the raw bytes.</param>
/// <param name="BodySha256">Lower-case hex SHA-256 of the bytes after the header/body separator
/// (of an empty string when there is no body).</param>
public sealed record IngestFigures(long RawLength, long Pop3Size, string Sha256, string BodySha256);

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

        if (_inBody)
        {
            _body.AppendData(chunk);
            foreach (var b in chunk)
                CountPop3Octet(b);
            return;
        }

        for (var i = 0; i < chunk.Length; i++)
        {
            var b = chunk[i];
            CountPop3Octet(b);
            DetectHeaderEnd(b);
            if (_inBody)
            {
                _body.AppendData(chunk[(i + 1)..]);
                // Keep counting the POP3 size for the remaining bytes.
                for (var j = i + 1; j < chunk.Length; j++)
                    CountPop3Octet(chunk[j]);
                return;
            }
        }
    }

    /// <summary>Finishes the computations. The meter cannot be used afterwards.</summary>
    public IngestFigures Complete()
    {
        // A message ending in a bare CR: that CR goes out as CRLF.
        if (_previousWasCr)
        {
            _pop3Size += 1;
            _previousWasCr = false;
        }
        var raw = Convert.ToHexStringLower(_raw.GetHashAndReset());
        var body = Convert.ToHexStringLower(_body.GetHashAndReset());
        return new IngestFigures(_rawLength, _pop3Size, raw, body);
    }

    private void CountPop3Octet(byte b)
    {
        switch (b)
        {
            case (byte)'\n':
                // CRLF counts 2 (CR already counted 1); a bare LF goes out as CRLF: 2.
                _pop3Size += _previousWasCr ? 1 : 2;
                _previousWasCr = false;
                break;
            case (byte)'\r':
                if (_previousWasCr)
                    _pop3Size += 1; // the previous CR was bare: it gains an LF on the wire
                _pop3Size += 1;
                _previousWasCr = true;
                break;
            default:
                if (_previousWasCr)
                    _pop3Size += 1; // bare CR followed by another byte
                _pop3Size += 1;
                _previousWasCr = false;
                break;
        }
    }

    private void DetectHeaderEnd(byte b)
    {
        if (b == (byte)'\n')
        {
            // An empty line (LF, or CR LF) ends the header block (RFC 5322 section 2.1);
            // a message that starts with an empty line has no header at all.
            if (_lineEmptySoFar)
                _inBody = true;
            _lineEmptySoFar = true;
            return;
        }
        if (b != (byte)'\r')
            _lineEmptySoFar = false;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _raw.Dispose();
        _body.Dispose();
    }
}
