using Azure.Data.Tables;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;
using CloudSpool.Storage.Azure;

namespace CloudSpool.TestSupport.Fixtures;

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

    /// <summary>
    /// Puts a message into a harness's spool as the last version before segments did: its blob, then a message row of its
    /// own with a JSON summary and a dedup row, in one transaction. Returns the message row (to age or alter it further).
    /// </summary>
    public static async Task<TableEntity> PutLegacyAsync(this PullHarness harness, string mailbox, byte[] raw, DateTimeOffset? committedAt = null)
    {
        var m = IngestedMessage.FromBytes(raw, "test", Guid.NewGuid().ToString("N"), DateTimeOffset.UtcNow);
        var storage = harness.Runtime.Storage;
        var blob = StorageNames.BlobName(mailbox, m.Figures.Sha256);
        await storage.Spool.GetBlobClient(blob).UploadAsync(new MemoryStream(raw), overwrite: true);
        var key = StorageNames.MessageRowKey((committedAt ?? DateTimeOffset.UtcNow).UtcTicks, m.Figures.Sha256);
        var row = new TableEntity(mailbox, key)
        {
            ["Uidl"] = SpoolUidl.For(m.DedupKey), ["BlobName"] = blob, ["RawLength"] = m.Figures.RawLength, ["Pop3Size"] = m.Figures.Pop3Size,
            ["Pop3SizeRule"] = IngestFigures.SizeRule, ["Sha256"] = m.Figures.Sha256, ["DedupKey"] = m.DedupKey, ["SourceAccount"] = m.SourceAccount,
            ["SourceKey"] = m.SourceKey, ["ReceivedAt"] = m.ReceivedAt,
            ["Summary"] = System.Text.Json.JsonSerializer.Serialize(m.Summary),
        };
        await storage.Messages.SubmitTransactionAsync(
        [
            new TableTransactionAction(TableTransactionActionType.Add, row),
            new TableTransactionAction(TableTransactionActionType.Add, new TableEntity(mailbox, StorageNames.DedupRowKey(m.DedupKey)) { ["MessageKey"] = key }),
        ]);
        (harness.Runtime.Spool as AzureSpool)?.Legacy.Forget(mailbox);
        return row;
    }
}
