using System.Globalization;
using System.Text;
using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Tests;

/// <summary>
/// The folded-header guard skims bodies line by line with a vectorised search; these tests hold it to the obvious
/// byte-by-byte scan it replaced (kept below as the reference) on random mail-like input, cut into random chunks.
/// </summary>
public sealed class FoldedHeaderGuardTests
{
    private static readonly string[] Lines =
    [
        "", "", "From: a@example.com", "To: b@example.com,", " c@example.com", "\tfolded", " ", "Content-Type: multipart/mixed; boundary=b",
        "Content-Type: message/rfc822", "content-type: MESSAGE/partial", "--b", "--", "-x", "- -", "---", "body text", "more body text here",
        "X-Name-That-Is-Rather-Long-Indeed-And-Goes-On-And-On-Beyond-Sixty-Four-Characters-Of-Name: v", "Subject: hi", "\r",
    ];

    private static readonly string[] Ends = ["\r\n", "\r\n", "\r\n", "\n", "\r", ""];

    private static byte[] RandomMail(Random random)
    {
        var text = new StringBuilder();
        var count = random.Next(0, 120);
        for (var i = 0; i < count; i++)
            text.Append(Lines[random.Next(Lines.Length)]).Append(Ends[random.Next(Ends.Length)]);
        return Encoding.Latin1.GetBytes(text.ToString());
    }

    [Fact]
    public void Agrees_with_the_byte_by_byte_scan_on_random_input_in_random_chunks()
    {
        var random = new Random(20261129);
        var flagged = 0;
        for (var round = 0; round < 3000; round++)
        {
            var raw = RandomMail(random);
            var budget = random.Next(0, 400);
            var expected = Reference.Check(raw, budget);
            var actual = FoldedHeaderGuard.Check(new ChunkingStream(raw, random.Next(1, 40)), budget);
            Assert.True(expected == actual, $"round {round}: expected {expected ?? "null"}, got {actual ?? "null"} for {Convert.ToBase64String(raw)}");
            if (expected is not null)
                flagged++;
        }
        // The comparison means something only if both outcomes occur often.
        Assert.InRange(flagged, 300, 2700);
    }

    [Fact]
    public void A_folded_field_in_the_header_of_a_part_after_a_long_body_is_still_found()
    {
        var body = string.Concat(Enumerable.Repeat("a line of body text that is not a boundary\r\n", 5000));
        var folded = string.Concat(Enumerable.Repeat(" x\r\n", 2000));
        var raw = Encoding.ASCII.GetBytes("Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body + "--b\r\nX-Long: v\r\n" + folded + "\r\ntext\r\n");
        Assert.Null(FoldedHeaderGuard.Check(new MemoryStream(raw), 10_000_000));
        Assert.StartsWith("the header field X-Long is folded over", FoldedHeaderGuard.Check(new MemoryStream(raw), 100_000));
    }

    /// <summary>Returns at most a few bytes per read, so chunk boundaries fall everywhere.</summary>
    private sealed class ChunkingStream(byte[] bytes, int most) : MemoryStream(bytes, writable: false)
    {
        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(count, most));
    }

    private sealed class ReferenceScan(long maxFoldingCost)
    {
        private const int MaxNameLength = 64;

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
            foreach (var b in chunk)
            {
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

    /// <summary>The guard's scan as it was before bodies were skimmed: every byte through the state machine.</summary>
    private static class Reference
    {
        public static string? Check(byte[] raw, long budget)
        {
            var scan = new ReferenceScan(budget);
            foreach (var b in raw)
            {
                if (scan.Feed([b]) is { } problem)
                    return problem;
            }
            return null;
        }
    }
}
