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
/// The cost is estimated while scanning the top-level header block once: for every continuation line, the bytes of its
/// field so far. Headers of real mail stay far below the budget (a To: of 1,000 recipients, one per line, costs about
/// 25 million); beyond it the message is handled as one MimeKit cannot parse. Headers of MIME parts inside the body are
/// not scanned.
/// </remarks>
internal static class FoldedHeaderGuard
{
    /// <summary>The most folding cost (bytes re-copied) a header block may have: about 0.1 s and 100 MB of MimeKit's time.</summary>
    public const long MaxFoldingCost = 100_000_000;

    private const int MaxNameLength = 64;

    /// <summary>
    /// Why the header block of <paramref name="raw"/> (from its current position) must not be given to MimeKit, or null
    /// when it may. The position is restored; a stream that cannot seek is not scanned (null).
    /// </summary>
    public static string? Check(Stream raw)
    {
        if (!raw.CanSeek)
            return null;
        var start = raw.Position;
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            var scan = new Scan();
            int read;
            while ((read = raw.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (scan.Feed(buffer.AsSpan(0, read)) is { } verdict)
                    return verdict.Length == 0 ? null : verdict;
            }
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            raw.Position = start;
        }
    }

    private sealed class Scan
    {
        private readonly StringBuilder _name = new();
        private bool _atLineStart = true;
        private bool _lineEmpty = true;
        private bool _inName;
        private long _fieldLength;
        private long _foldedLines;
        private long _cost;

        /// <summary>Null to go on; empty when the header block ended within budget; otherwise the problem.</summary>
        public string? Feed(ReadOnlySpan<byte> chunk)
        {
            foreach (var b in chunk)
            {
                if (_atLineStart)
                {
                    _atLineStart = false;
                    if (b is (byte)' ' or (byte)'\t')
                    {
                        // RFC 5322 section 2.2.3: a line starting with white space continues the field above.
                        _foldedLines++;
                        _cost += _fieldLength;
                        if (_cost > MaxFoldingCost)
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
                    // An empty line (LF or CRLF) ends the header block (RFC 5322 section 2.1).
                    if (_lineEmpty)
                        return string.Empty;
                    _atLineStart = true;
                    _lineEmpty = true;
                    _inName = false;
                    _fieldLength++;
                    continue;
                }
                _fieldLength++;
                if (b != (byte)'\r')
                    _lineEmpty = false;
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
    }
}
