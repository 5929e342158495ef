using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Spool;

/// <summary>A message ready to be committed to the spool.</summary>
public sealed record IngestedMessage(
    IngestFigures Figures,
    MessageSummary Summary,
    string DedupKey,
    string SourceAccount,
    string SourceKey,
    DateTimeOffset ReceivedAt)
{
    /// <summary>Set when the bytes were written into a pack (<see cref="ISpool.WritePackAsync"/>): the pack and where they start.</summary>
    public PackSlot? Pack { get; init; }

    /// <summary>
    /// A message whose bytes are whole in memory (mail CloudSpool writes itself, such as alerts): its figures,
    /// summary and dedup key computed as ingest does for a fetched message.
    /// </summary>
    public static IngestedMessage FromBytes(byte[] raw, string sourceAccount, string sourceKey, DateTimeOffset receivedAt)
    {
        ArgumentNullException.ThrowIfNull(raw);
        IngestFigures figures;
        using (var meter = new IngestMeter())
        {
            meter.Append(raw);
            figures = meter.Complete();
        }
        var summary = MessageSummarizer.Summarize(new MemoryStream(raw, writable: false));
        return new IngestedMessage(figures, summary, Ingest.DedupKey.For(summary.MessageId, figures), sourceAccount, sourceKey, receivedAt);
    }
}
