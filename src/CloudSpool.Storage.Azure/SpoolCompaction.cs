using System.Runtime.CompilerServices;
using Azure.Data.Tables;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>What a compaction did to one mailbox.</summary>
/// <param name="Mailbox">The mailbox.</param>
/// <param name="Moved">Messages moved from rows of their own into segments.</param>
/// <param name="Left">Messages left as rows, each as "key: reason".</param>
public sealed record CompactionResult(string Mailbox, long Moved, IReadOnlyList<string> Left);

/// <summary>
/// Moves the messages of earlier versions (a row and a dedup row each) into segments, oldest first, up to 32 at a time:
/// each batch's segment row, dedup entries and the removal of its old rows are one transaction, so a compaction stopped
/// anywhere leaves every message in exactly one of the two forms, and running it again continues. Keys, UIDLs, sizes and
/// bytes stay as they were. A row that cannot be written as a segment member (a dedup key or hash that is not SHA-256
/// hex, a UIDL that is not its dedup key's, a blob name of another form) stays a row, still read, and is reported.
/// </summary>
public sealed class SpoolCompaction(AzureStorage storage, AzureSpool spool)
{
    /// <summary>Old rows moved per transaction: each takes three entities (its row, its dedup row, its bucket).</summary>
    private const int Batch = 32;

    private const int ConflictAttempts = 8;

    /// <summary>The mailboxes that hold rows of earlier versions.</summary>
    public async IAsyncEnumerable<string> MailboxesAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var after = "";
        while (true)
        {
            var filter = TableClient.CreateQueryFilter(
                $"PartitionKey gt {after} and RowKey gt {StorageNames.MessageRowPrefix} and RowKey lt {StorageNames.PrefixEnd(StorageNames.MessageRowPrefix)}");
            string? next = null;
            await foreach (var page in storage.Messages.QueryAsync<TableEntity>(filter, maxPerPage: 1, select: ["PartitionKey"], cancellationToken: cancellationToken)
                .AsPages(pageSizeHint: 1).ConfigureAwait(false))
            {
                if (page.Values.Count > 0)
                {
                    next = page.Values[0].PartitionKey;
                    break;
                }
                if (page.ContinuationToken is null)
                    break;
            }
            if (next is null)
                yield break;
            yield return next;
            after = next;
        }
    }

    public async Task<CompactionResult> CompactAsync(string mailbox, IProgress<CompactionResult>? progress, CancellationToken cancellationToken)
    {
        long moved = 0;
        var left = new List<string>();
        string? after = null;
        var conflicts = 0;
        while (true)
        {
            var rows = await NextRowsAsync(mailbox, after, cancellationToken).ConfigureAwait(false);
            if (rows.Count == 0)
                break;
            var batch = new List<TableEntity>(Batch);
            foreach (var row in rows)
            {
                var reason = WhyNotMovable(mailbox, row);
                if (reason is null && (batch.Count == 0 || Fits(batch, row)))
                {
                    batch.Add(row);
                    continue;
                }
                if (batch.Count > 0)
                    break;
                left.Add($"{row.RowKey}: {reason}");
                after = row.RowKey;
            }
            if (batch.Count == 0)
                continue;
            if (await TryMoveAsync(mailbox, batch, cancellationToken).ConfigureAwait(false))
            {
                moved += batch.Count;
                conflicts = 0;
                progress?.Report(new CompactionResult(mailbox, moved, left));
            }
            else if (++conflicts >= ConflictAttempts)
            {
                throw new InvalidOperationException($"compacting {mailbox} conflicted with other writers {conflicts} times in a row");
            }
        }
        spool.Legacy.Forget(mailbox);
        return new CompactionResult(mailbox, moved, left);
    }

    private async Task<List<TableEntity>> NextRowsAsync(string mailbox, string? after, CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {mailbox} and RowKey gt {after ?? StorageNames.MessageRowPrefix} and RowKey lt {StorageNames.PrefixEnd(StorageNames.MessageRowPrefix)}");
        await foreach (var page in storage.Messages.QueryAsync<TableEntity>(filter, maxPerPage: Batch, cancellationToken: cancellationToken)
            .AsPages(pageSizeHint: Batch).ConfigureAwait(false))
        {
            if (page.Values.Count > 0 || page.ContinuationToken is null)
                return [.. page.Values];
        }
        return [];
    }

    /// <summary>One segment holds rows of one size rule, in strictly increasing commit ticks, within the span of a segment.</summary>
    private static bool Fits(List<TableEntity> batch, TableEntity row) =>
        SizeRuleOf(row) == SizeRuleOf(batch[0])
        && SegmentTable.WithinSpan(batch[0].RowKey, row.RowKey)
        && SpoolKeys.TryGetTicks(batch[^1].RowKey, out var previous) && SpoolKeys.TryGetTicks(row.RowKey, out var ticks) && ticks > previous;

    private static int SizeRuleOf(TableEntity row) => row.GetInt32("Pop3SizeRule") ?? 1;

    private static bool IsHex64(string? text) => text is { Length: 64 } && text.All(char.IsAsciiHexDigitLower);

    private static string? WhyNotMovable(string mailbox, TableEntity row)
    {
        var sha = row.GetString("Sha256");
        var dedup = row.GetString("DedupKey");
        if (!IsHex64(sha))
            return "its SHA-256 is not 64 lower-case hex digits";
        if (!IsHex64(dedup))
            return "its dedup key is not 64 lower-case hex digits";
        if (row.GetString("Uidl") != SpoolUidl.For(dedup!))
            return "its UIDL is not the one a segment would give it";
        if (!SpoolKeys.TryGetTicks(row.RowKey, out var ticks) || row.RowKey != SpoolKeys.Message(ticks, sha!))
            return "its key is not made of its commit time and hash";
        var blob = row.GetString("BlobName");
        if (row.GetInt64("BlobOffset") is null)
            return blob == StorageNames.BlobName(mailbox, sha!) ? null : "its blob name is not its hash's";
        return SpoolKeys.TryGetTicks(row.GetString("PackFirst") ?? "", out _) && SpoolKeys.TryGetTicks(row.GetString("PackLast") ?? "", out _) && !string.IsNullOrEmpty(blob)
            ? null
            : "its pack has no key range";
    }

    private async Task<bool> TryMoveAsync(string mailbox, List<TableEntity> batch, CancellationToken cancellationToken)
    {
        var messages = batch.Select(LegacyMessageRows.FromEntity).ToList();
        var dedupRows = await Task.WhenAll(messages.Select(m => storage.Messages.GetEntityIfExistsAsync<TableEntity>(mailbox, StorageNames.DedupRowKey(m.DedupKey),
            cancellationToken: cancellationToken))).ConfigureAwait(false);

        var packs = new List<SegmentPack>();
        var members = new List<SegmentMember>(batch.Count);
        var more = new List<TableTransactionAction>(batch.Count * 2);
        for (var i = 0; i < batch.Count; i++)
        {
            var m = messages[i];
            var pack = -1;
            if (m.Pack is { } place)
            {
                pack = packs.FindIndex(p => p.BlobName == m.BlobName);
                if (pack < 0)
                {
                    packs.Add(new SegmentPack(m.BlobName, place.FirstKey, place.LastKey));
                    pack = packs.Count - 1;
                }
            }
            SpoolKeys.TryGetTicks(m.MessageKey, out var ticks);
            members.Add(new SegmentMember(ticks, m.Sha256, m.Uidl, m.RawLength, m.Pop3Size, pack, m.Pack?.Offset ?? 0));
            more.Add(new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(mailbox, m.MessageKey), batch[i].ETag));
            if (dedupRows[i].HasValue && dedupRows[i].Value!.GetString("MessageKey") == m.MessageKey)
                more.Add(new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(mailbox, dedupRows[i].Value!.RowKey), dedupRows[i].Value!.ETag));
        }
        var records = messages.Select(m => new SegmentRecord(m.MessageKey, m.DedupKey, m.Sha256, m.RawLength, m.Pop3Size, m.SourceAccount, m.SourceKey, m.ReceivedAt, m.Summary)).ToList();
        return await spool.TrySubmitSegmentAsync(mailbox, SizeRuleOf(batch[0]), packs, members, records, more, cancellationToken).ConfigureAwait(false);
    }
}
