namespace CloudSpool.Pop3.Protocol;

/// <summary>
/// Turns stored message bytes into the body of a POP3 multi-line response (RFC 1939 section 3), chunk by chunk,
/// with constant state: a bare LF (one not after a CR) becomes CRLF, a line starting with "." gets one more "."
/// (byte-stuffing), and <see cref="Finish"/> ends a last line without line end with an extra CRLF and writes the
/// terminating ".\r\n". Every other byte (a bare CR, 8-bit, NUL) is copied as it is, as Dovecot 2.3 does: a line
/// ends at LF only.
/// </summary>
/// <remarks>
/// For TOP (RFC 1939 section 7) the encoder stops after the header, the line that ends it and the requested number of
/// body lines. As in Dovecot, the header ends with the first line that starts with a CR or LF (an empty line, or one
/// a broken mailer began with a bare CR), body lines are counted at their LF, and a message without such a line is
/// all header. The one deliberate difference: a "." that starts the message is stuffed (Dovecot 2.3 sends it as is).
/// <para>
/// With <c>bareCrAsCrlf</c> the encoder keeps the rule of rows written before size rule 2 (see
/// <see cref="Pop3MessageInfo.BareCrAsCrlf"/>): every bare CR also goes out as CRLF and ends a line, so what it sends
/// still matches the size recorded for them.
/// </para>
/// </remarks>
internal sealed class Pop3DataEncoder
{
    /// <summary>Output space <see cref="Finish"/> needs at most: a CRLF for a pending CR or last line, then ".\r\n".</summary>
    public const int FinishSize = 5;

    private readonly bool _top;
    private readonly bool _bareCrAsCrlf;
    private long _bodyLinesLeft;
    private bool _inBody;
    private bool _atLineStart = true;
    private bool _lineStartsWithCr;
    private bool _pendingCr;
    private bool _previousWasCr;

    /// <summary>An encoder for RETR: the whole message.</summary>
    public Pop3DataEncoder(bool bareCrAsCrlf = false)
    {
        _bareCrAsCrlf = bareCrAsCrlf;
    }

    /// <summary>An encoder for TOP: header, the line that ends it and the first <paramref name="bodyLines"/> body lines.</summary>
    public Pop3DataEncoder(long bodyLines, bool bareCrAsCrlf = false)
        : this(bareCrAsCrlf)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bodyLines);
        _top = true;
        _bodyLinesLeft = bodyLines;
    }

    /// <summary>
    /// Octets of the message written so far as they count for the RFC 1939 size: the stored bytes and the CR added to a
    /// bare LF; not the stuffing dots, the extra CRLF after a last line without line end or the terminating line. For RETR it ends
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
                // Old rule: the CR of the previous byte, CRLF if this is its LF, else a bare CR that goes out as CRLF.
                _pendingCr = false;
                o += WriteLineEnd(output[o..], withCr: true);
                if (b == (byte)'\n')
                    i++;
                EndLine();
                continue;
            }
            if (b == (byte)'\r')
            {
                i++;
                if (_atLineStart)
                    _lineStartsWithCr = true;
                if (_bareCrAsCrlf)
                {
                    _pendingCr = true;
                    continue;
                }
                // A CR is an octet like any other; only the LF after it ends the line.
                output[o++] = b;
                MessageOctets++;
                _atLineStart = false;
                _previousWasCr = true;
                continue;
            }
            if (b == (byte)'\n')
            {
                o += WriteLineEnd(output[o..], withCr: !_previousWasCr);
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
            _previousWasCr = false;
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
            // Old rule: a message ending in a bare CR: that CR goes out as CRLF and counts (as in the old size).
            _pendingCr = false;
            o += WriteLineEnd(output, withCr: true);
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

    /// <summary>Writes the LF that ends a line, after a CR of its own when the stored line end has none.</summary>
    private int WriteLineEnd(Span<byte> output, bool withCr)
    {
        var o = 0;
        if (withCr)
            output[o++] = (byte)'\r';
        output[o++] = (byte)'\n';
        MessageOctets += o;
        return o;
    }

    private void EndLine()
    {
        // The line that ends the header starts with a CR or LF: empty, or begun with a bare CR.
        var endsHeader = _atLineStart || _lineStartsWithCr;
        _atLineStart = true;
        _lineStartsWithCr = false;
        _previousWasCr = false;
        if (!_top)
            return;
        if (!_inBody)
        {
            if (!endsHeader)
                return;
            // The line between header and body (RFC 5322 section 2.1: an empty line) has just been written.
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
