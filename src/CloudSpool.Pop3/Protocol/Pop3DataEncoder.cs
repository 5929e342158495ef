namespace CloudSpool.Pop3.Protocol;

/// <summary>
/// Turns stored message bytes into the body of a POP3 multi-line response (RFC 1939 section 3), chunk by chunk,
/// with constant state: every bare LF or bare CR becomes CRLF (CRLF stays), a line starting with "." gets one
/// more "." (byte-stuffing), and <see cref="Finish"/> ends a last line without line end with an extra CRLF and
/// writes the terminating ".\r\n". Every other byte (8-bit, NUL) is copied as it is.
/// </summary>
/// <remarks>
/// For TOP (RFC 1939 section 7) the encoder stops after the header, the blank line and the requested number of body
/// lines. Lines are counted as they go out on the wire; the header ends at the first empty line; a message without
/// one is all header.
/// </remarks>
internal sealed class Pop3DataEncoder
{
    /// <summary>Output space <see cref="Finish"/> needs at most: a CRLF for a pending CR or last line, then ".\r\n".</summary>
    public const int FinishSize = 5;

    private readonly bool _top;
    private long _bodyLinesLeft;
    private bool _inBody;
    private bool _atLineStart = true;
    private bool _pendingCr;

    /// <summary>An encoder for RETR: the whole message.</summary>
    public Pop3DataEncoder()
    {
    }

    /// <summary>An encoder for TOP: header, blank line and the first <paramref name="bodyLines"/> body lines.</summary>
    public Pop3DataEncoder(long bodyLines)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bodyLines);
        _top = true;
        _bodyLinesLeft = bodyLines;
    }

    /// <summary>
    /// Octets of the message written so far as they count for the RFC 1939 size: line ends as CRLF, without the
    /// stuffing dots, the extra CRLF after a last line without line end, and the terminating line. For RETR it ends
    /// equal to <see cref="Pop3MessageInfo.Pop3Size"/> of an intact message.
    /// </summary>
    public long MessageOctets { get; private set; }

    /// <summary>TOP has written all it was asked for; the rest of the message need not be read.</summary>
    public bool IsComplete { get; private set; }

    /// <summary>Output space <see cref="Encode"/> may need for <paramref name="inputLength"/> input bytes.</summary>
    public static int MaxEncodedSize(int inputLength) => (2 * inputLength) + 2;

    /// <summary>
    /// Encodes as much of <paramref name="input"/> as it takes (all of it unless TOP completes) into
    /// <paramref name="output"/>, which must hold <see cref="MaxEncodedSize"/> bytes. Returns the bytes written.
    /// </summary>
    public int Encode(ReadOnlySpan<byte> input, Span<byte> output, out int consumed)
    {
        var i = 0;
        var o = 0;
        while (i < input.Length && !IsComplete)
        {
            var b = input[i];
            if (_pendingCr)
            {
                // The CR of the previous byte: CRLF if this is its LF, else a bare CR that goes out as CRLF.
                _pendingCr = false;
                o += WriteLineEnd(output[o..]);
                if (b == (byte)'\n')
                    i++;
                EndLine();
                continue;
            }
            if (b == (byte)'\r')
            {
                _pendingCr = true;
                i++;
                continue;
            }
            if (b == (byte)'\n')
            {
                o += WriteLineEnd(output[o..]);
                i++;
                EndLine();
                continue;
            }

            // RFC 1939 section 3: a line starting with the termination octet is byte-stuffed.
            if (_atLineStart && b == (byte)'.')
                output[o++] = (byte)'.';
            var run = input[i..].IndexOfAny((byte)'\r', (byte)'\n');
            if (run < 0)
                run = input.Length - i;
            input.Slice(i, run).CopyTo(output[o..]);
            o += run;
            i += run;
            MessageOctets += run;
            _atLineStart = false;
        }
        consumed = i;
        return o;
    }

    /// <summary>Ends the response into <paramref name="output"/> (at least <see cref="FinishSize"/> bytes); returns the bytes written.</summary>
    public int Finish(Span<byte> output)
    {
        var o = 0;
        if (_pendingCr)
        {
            // A message ending in a bare CR: that CR goes out as CRLF and counts (as in the ingest size).
            _pendingCr = false;
            o += WriteLineEnd(output);
            EndLine();
        }
        if (!_atLineStart)
        {
            // The message does not end in a line end: the terminator must start a line of its own. This CRLF is
            // not part of the message and not counted in its size (as Dovecot does).
            output[o++] = (byte)'\r';
            output[o++] = (byte)'\n';
        }
        output[o++] = (byte)'.';
        output[o++] = (byte)'\r';
        output[o++] = (byte)'\n';
        return o;
    }

    private int WriteLineEnd(Span<byte> output)
    {
        output[0] = (byte)'\r';
        output[1] = (byte)'\n';
        MessageOctets += 2;
        return 2;
    }

    private void EndLine()
    {
        var wasEmpty = _atLineStart;
        _atLineStart = true;
        if (!_top)
            return;
        if (!_inBody)
        {
            if (!wasEmpty)
                return;
            // The blank line between header and body (RFC 5322 section 2.1) has just been written.
            _inBody = true;
        }
        else
        {
            _bodyLinesLeft--;
        }
        if (_bodyLinesLeft <= 0)
            IsComplete = true;
    }
}
