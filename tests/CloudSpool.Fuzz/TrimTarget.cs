using System.Text;
using CloudSpool.Core.Forward;
using MimeKit;

namespace CloudSpool.Fuzz;

/// <summary>
/// Forward trimming of one stored message (<see cref="ForwardSource.Load"/> then <see cref="ForwardTrimmer.Trim"/>) for
/// a destination with the smallest size limit the configuration allows and for one with a large limit.
/// </summary>
/// <remarks>
/// Invariants: nothing throws (Trim documents that bad content gets a skip reason); a copy is within the destination's
/// limit, its <see cref="TrimmedMessage.Size"/> is what it measures on the SMTP wire, it parses again and carries the
/// loop-guard header; no copy comes with a skip reason.
/// </remarks>
public sealed class TrimTarget : IFuzzTarget
{
    public static readonly TrimLimits Small = new(ForwardOptionsValidator.MinDestinationBytes, ["text/calendar"]);
    public static readonly TrimLimits Large = new(1024 * 1024, ["image/*", "text/calendar", "application/pdf"]);

    private static readonly ForwardAddressing Addressing = new(
        new MailboxAddress("CloudSpool", "cloudspool@home.test"), new MailboxAddress("Phone", "phone@example.test"),
        "fwd-0001@cloudspool.test", "m:0638000000000000000-0badc0de", new DateTimeOffset(2026, 11, 28, 12, 0, 0, TimeSpan.Zero));

    public string Name => "trim";

    public byte[] Run(byte[] input)
    {
        using var output = new MemoryStream();
        foreach (var limits in new[] { Small, Large })
        {
            var source = ForwardSource.Load(new MemoryStream(input, writable: false));
            var trimmed = ForwardTrimmer.Trim(source, limits, Addressing);
            output.Write(Encoding.UTF8.GetBytes($"--- limit {limits.MaxBytes}\n"));
            if (trimmed.Message is null)
            {
                if (trimmed.SkipReason is null)
                    throw new FuzzFindingException("trim: neither a copy nor a skip reason");
                output.Write(Encoding.UTF8.GetBytes("skipped: " + trimmed.SkipReason + "\n"));
                continue;
            }
            if (trimmed.SkipReason is not null)
                throw new FuzzFindingException("trim: a copy with a skip reason: " + trimmed.SkipReason);
            var bytes = Written(trimmed.Message);
            if (bytes.Length != trimmed.Size)
                throw new FuzzFindingException($"trim: Size says {trimmed.Size}, the copy is {bytes.Length} bytes on the wire");
            if (bytes.Length > limits.MaxBytes)
                throw new FuzzFindingException($"trim: the copy is {bytes.Length} bytes, over the limit of {limits.MaxBytes}");
            CheckParses(bytes);
            output.Write(bytes);
        }
        return output.ToArray();
    }

    private static byte[] Written(MimeMessage message)
    {
        using var buffer = new MemoryStream();
        message.WriteTo(ForwardTrimmer.WireFormat, buffer);
        return buffer.ToArray();
    }

    private static void CheckParses(byte[] bytes)
    {
        MimeMessage copy;
        try
        {
            copy = MimeMessage.Load(new MemoryStream(bytes, writable: false));
        }
        catch (FormatException ex)
        {
            throw new FuzzFindingException("trim: the copy does not parse: " + ex.Message, ex);
        }
        if (copy.Headers[ForwardTrimmer.LoopHeader] != Addressing.SourceKey)
            throw new FuzzFindingException("trim: the copy has no loop-guard header");
        _ = copy.TextBody;
    }
}
