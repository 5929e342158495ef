using System.Buffers;
using System.Globalization;
using System.Text;

namespace CloudSpool.Core.Ingest;

/// <summary>
/// Keeps messages whose header fields are folded over very many lines away from MimeKit. Its parser (4.18) re-copies a
/// field's value for each folded line, so time and memory grow with the lines of a field times its length: a 300 KB
/// field of 6,000 lines costs it seconds and 700 MB here, a 1 MB one minutes (found by the ingest fuzz target; MimeKit
/// issue 919 describes the same). One hostile message would stall every pull and forward run that parses it.
/// </summary>
/// <remarks>
/// One pass over the bytes estimates the cost: for every continuation line of a header field, the bytes of that field so
/// far, summed over the message. Header blocks are the message's own, each one after a line starting with "--" (a MIME
/// part's, after its boundary) and the one after a header block that names a message/ type (an attached message's).
/// Real mail stays far below the budget (a To: of 1,000 recipients, one per line, costs about 21 million).
/// </remarks>
internal static class FoldedHeaderGuard
{
    /// <summary>The most folding cost (bytes re-copied) a message may have: some tens of MB and milliseconds of MimeKit's time.</summary>
    public const long MaxFoldingCost = 50_000_000;

    private const int MaxNameLength = 64;

    /// <summary>
    /// Why <paramref name="raw"/> (from its current position) must not be given to MimeKit, or null when it may. The
    /// position is restored; a stream that cannot seek is not scanned (null).
    /// </summary>
    public static string? Check(Stream raw) => Check(raw, MaxFoldingCost);

    /// <summary>As <see cref="Check(Stream)"/>, with another budget (tests).</summary>
    internal static string? Check(Stream raw, long maxFoldingCost)
    {
        if (!raw.CanSeek)
            return null;
        var start = raw.Position;
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var scan = new Scan(maxFoldingCost);
            int read;
            while ((read = raw.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (scan.Feed(buffer.AsSpan(0, read)) is { } problem)
                    return problem;
            }
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            raw.Position = start;
        }
    }

    private sealed class Scan(long maxFoldingCost)
    {
        private static ReadOnlySpan<byte> MessageType => "message/"u8;

        private readonly StringBuilder _name = new();
        private bool _inHeader = true;
        private bool _blockNamesMessageType;
        private int _typeMatch;
        private long _lineLength;
        private bool _lineEmpty = true;
        private bool _lineDashes;
        private bool _inName;
        private long _fieldLength;
        private long _foldedLines;
        private long _cost;

        /// <summary>Null to go on; otherwise the problem.</summary>
        public string? Feed(ReadOnlySpan<byte> chunk)
        {
            for (var i = 0; i < chunk.Length; i++)
            {
                if (!_inHeader)
                {
                    // In a body only the start of each line matters (a boundary line starts with "--"): skip to its end.
                    var rest = chunk[i..];
                    var end = rest.IndexOf((byte)'\n');
                    SkimBodyLine(end < 0 ? rest : rest[..end]);
                    if (end < 0)
                        return null;
                    EndLine();
                    i += end;
                    continue;
                }
                var b = chunk[i];
                if (_lineLength == 0 && _inHeader)
                {
                    if (b is (byte)' ' or (byte)'\t')
                    {
                        // RFC 5322 section 2.2.3: a line starting with white space continues the field above.
                        _foldedLines++;
                        _cost += _fieldLength;
                        if (_cost > maxFoldingCost)
                        {
                            return string.Create(CultureInfo.InvariantCulture,
                                $"the header field {_name} is folded over {_foldedLines} lines ({_fieldLength} bytes so far): too costly to parse");
                        }
                    }
                    else
                    {
                        _name.Clear();
                        _inName = true;
                        _fieldLength = 0;
                        _foldedLines = 0;
                    }
                }
                if (b == (byte)'\n')
                {
                    EndLine();
                    continue;
                }
                _lineDashes = _lineLength switch
                {
                    0 => b == (byte)'-',
                    1 => _lineDashes && b == (byte)'-',
                    _ => _lineDashes,
                };
                _lineLength++;
                if (b != (byte)'\r')
                    _lineEmpty = false;
                if (!_inHeader)
                    continue;
                _fieldLength++;
                MatchMessageType(b);
                if (_inName)
                {
                    if (b == (byte)':')
                        _inName = false;
                    else if (_name.Length < MaxNameLength)
                        _name.Append(b is > 0x20 and < 0x7F ? (char)b : '?');
                }
            }
            return null;
        }

        /// <summary>Part of a body line: what the per-byte path would record of it.</summary>
        private void SkimBodyLine(ReadOnlySpan<byte> part)
        {
            for (var k = 0; k < part.Length && _lineLength + k < 2; k++)
                _lineDashes = (_lineLength + k == 0 || _lineDashes) && part[k] == (byte)'-';
            if (part.IndexOfAnyExcept((byte)'\r') >= 0)
                _lineEmpty = false;
            _lineLength += part.Length;
        }

        private void EndLine()
        {
            if (_inHeader && _lineEmpty)
            {
                // RFC 5322 section 2.1: an empty line ends a header block. An attached message's header follows its part's.
                _inHeader = _blockNamesMessageType;
                StartBlock();
            }
            else if (_inHeader)
            {
                _fieldLength++;
            }
            else if (_lineDashes && _lineLength >= 2)
            {
                // RFC 2046 section 5.1.1: a boundary line, then the part's header.
                _inHeader = true;
                StartBlock();
            }
            _lineLength = 0;
            _lineEmpty = true;
            _lineDashes = false;
            _inName = false;
        }

        private void StartBlock()
        {
            _blockNamesMessageType = false;
            _typeMatch = 0;
            _fieldLength = 0;
            _foldedLines = 0;
            _name.Clear();
        }

        private void MatchMessageType(byte b)
        {
            var lower = b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;
            _typeMatch = lower == MessageType[_typeMatch] ? _typeMatch + 1 : lower == MessageType[0] ? 1 : 0;
            if (_typeMatch == MessageType.Length)
            {
                _blockNamesMessageType = true;
                _typeMatch = 0;
            }
        }
    }
}
