using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;

namespace CloudSpool.IntegrationTests.Fixtures;

/// <summary>Puts raw messages straight into a harness's spool, as the pull job stores them.</summary>
public static class SpoolWriter
{
    /// <summary>Blob first, then the metadata commit; returns the stored message as the spool reader sees it.</summary>
    public static async Task<SpoolMessage> PutAsync(this PullHarness spool, string mailbox, byte[] raw)
    {
        IngestFigures figures;
        using (var meter = new IngestMeter())
        {
            meter.Append(raw);
            figures = meter.Complete();
        }
        var summary = MessageSummarizer.Summarize(new MemoryStream(raw));
        var message = new IngestedMessage(figures, summary, DedupKey.For(summary.MessageId, figures), "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow);
        await spool.Runtime.Spool.WriteContentAsync(mailbox, message, new MemoryStream(raw), CancellationToken.None);
        var stored = Assert.Single(await spool.Runtime.Spool.CommitAsync(mailbox, [message], CancellationToken.None));
        Assert.Equal(StoreOutcome.Stored, stored.Outcome);
        return (await spool.Runtime.SpoolReader.GetAsync(mailbox, stored.MessageKey, CancellationToken.None))!;
    }
}
