using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;

namespace CloudSpool.IntegrationTests.Fixtures;

/// <summary>Puts messages into a spool the way the pull job does: blob first, then the metadata commit.</summary>
public static class SpoolWriter
{
    public static async Task<SpoolMessage> PutAsync(ISpool spool, ISpoolReader reader, string mailbox, byte[] raw)
    {
        var message = IngestedMessage.FromBytes(raw, "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow);
        await spool.WriteContentAsync(mailbox, message, new MemoryStream(raw), CancellationToken.None);
        var stored = Xunit.Assert.Single(await spool.CommitAsync(mailbox, [message], CancellationToken.None));
        Xunit.Assert.Equal(StoreOutcome.Stored, stored.Outcome);
        return (await reader.GetAsync(mailbox, stored.MessageKey, CancellationToken.None))!;
    }

    /// <summary>The same into a harness's spool.</summary>
    public static Task<SpoolMessage> PutAsync(this PullHarness harness, string mailbox, byte[] raw) =>
        PutAsync(harness.Runtime.Spool, harness.Runtime.SpoolReader, mailbox, raw);
}
