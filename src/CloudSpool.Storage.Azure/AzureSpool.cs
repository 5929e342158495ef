using System.Runtime.CompilerServices;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs.Models;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// The spool on Azure: raw bytes in Blob (write-once, named by content hash), metadata and the dedup index
/// in one Table partition per mailbox, committed together in entity-group transactions of up to 50 messages.
/// </summary>
/// <remarks>
/// Message keys are taken at commit time, strictly increasing in this process, so that a reader syncing from its
/// last position misses nothing but what other writers commit within its look-back window (see SpoolKeys).
/// </remarks>
public sealed class AzureSpool(AzureStorage storage, TimeProvider? clock = null) : ISpool, ISpoolReader
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private long _lastTicks;

    /// <summary>Ticks for the next message key: now, but always after the last one this process handed out.</summary>
    private long NextTicks()
    {
        while (true)
        {
            var last = Interlocked.Read(ref _lastTicks);
            var next = Math.Max(_clock.GetUtcNow().UtcTicks, last + 1);
            if (Interlocked.CompareExchange(ref _lastTicks, next, last) == last)
                return next;
        }
    }

    /// <summary>The key of the message with this dedup key in the mailbox, if any.</summary>
    private async Task<string?> FindByDedupKeyAsync(string mailbox, string dedupKey, CancellationToken cancellationToken)
    {
        var row = await storage.Messages.GetEntityIfExistsAsync<TableEntity>(mailbox, StorageNames.DedupRowKey(dedupKey),
            select: ["MessageKey"], cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? row.Value!.GetString("MessageKey") : null;
    }

    /// <inheritdoc />
    public async Task WriteContentAsync(string mailbox, IngestedMessage message, Stream content, CancellationToken cancellationToken)
    {
        // Write-once (If-None-Match: *). The name is the content hash, so a retry after a crash, or the same
        // bytes arriving again, finds the same blob already there with the same bytes.
        var blob = storage.Spool.GetBlobClient(StorageNames.BlobName(mailbox, message.Figures.Sha256));
        try
        {
            await blob.UploadAsync(content, new BlobUploadOptions
            {
                Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
                HttpHeaders = new BlobHttpHeaders { ContentType = "message/rfc822" },
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.IsConflict() || ex.IsPreconditionFailed())
        {
            // Already written: same name, same hash, same bytes.
        }
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoreResult>> CommitAsync(string mailbox, IReadOnlyList<IngestedMessage> messages, CancellationToken cancellationToken)
    {
        var results = new StoreResult?[messages.Count];
        // One transaction holds at most 100 entities of one partition: 49 messages with their dedup rows, and the change row.
        // A dedup key twice in one transaction is refused by the service, so later twins wait for the first.
        var firsts = new Dictionary<string, int>(StringComparer.Ordinal);
        var twins = new List<int>();
        for (var i = 0; i < messages.Count; i++)
        {
            if (!firsts.TryAdd(messages[i].DedupKey, i))
                twins.Add(i);
        }

        foreach (var chunk in firsts.Values.Order().Chunk(49))
        {
            var actions = new List<TableTransactionAction>(chunk.Length * 2 + 1) { ChangeAction(mailbox) };
            var keys = new string[chunk.Length];
            for (var j = 0; j < chunk.Length; j++)
            {
                var m = messages[chunk[j]];
                keys[j] = StorageNames.MessageRowKey(NextTicks(), m.Figures.Sha256);
                actions.Add(new TableTransactionAction(TableTransactionActionType.Add, ToEntity(mailbox, keys[j], StorageNames.BlobName(mailbox, m.Figures.Sha256), m)));
                actions.Add(new TableTransactionAction(TableTransactionActionType.Add, new TableEntity(mailbox, StorageNames.DedupRowKey(m.DedupKey)) { ["MessageKey"] = keys[j] }));
            }
            try
            {
                await storage.Messages.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
                for (var j = 0; j < chunk.Length; j++)
                    results[chunk[j]] = new StoreResult(StoreOutcome.Stored, keys[j]);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409)
            {
                // Some message of the batch is held already (another account, an earlier crashed run):
                // commit them one by one to tell which.
                foreach (var index in chunk)
                    results[index] = await CommitOneAsync(mailbox, messages[index], cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var index in twins)
        {
            var first = results[firsts[messages[index].DedupKey]]!;
            await DeleteBlobIfUnreferencedAsync(mailbox, StorageNames.BlobName(mailbox, messages[index].Figures.Sha256), first.MessageKey, cancellationToken).ConfigureAwait(false);
            results[index] = new StoreResult(StoreOutcome.Duplicate, first.MessageKey);
        }
        return results.Select(r => r!).ToList();
    }

    private async Task<StoreResult> CommitOneAsync(string mailbox, IngestedMessage message, CancellationToken cancellationToken)
    {
        var blobName = StorageNames.BlobName(mailbox, message.Figures.Sha256);
        var messageKey = StorageNames.MessageRowKey(NextTicks(), message.Figures.Sha256);
        var row = ToEntity(mailbox, messageKey, blobName, message);
        var dedup = new TableEntity(mailbox, StorageNames.DedupRowKey(message.DedupKey)) { ["MessageKey"] = messageKey };
        try
        {
            await storage.Messages.SubmitTransactionAsync(
                [new TableTransactionAction(TableTransactionActionType.Add, row), new TableTransactionAction(TableTransactionActionType.Add, dedup), ChangeAction(mailbox)],
                cancellationToken).ConfigureAwait(false);
            return new StoreResult(StoreOutcome.Stored, messageKey);
        }
        catch (TableTransactionFailedException ex) when (ex.Status == 409)
        {
            // The mailbox holds this message already (same dedup key).
            var winner = await FindByDedupKeyAsync(mailbox, message.DedupKey, cancellationToken).ConfigureAwait(false)
                         ?? throw new InvalidOperationException($"dedup row for {message.DedupKey} conflicted but cannot be read", ex);
            await DeleteBlobIfUnreferencedAsync(mailbox, blobName, winner, cancellationToken).ConfigureAwait(false);
            return new StoreResult(StoreOutcome.Duplicate, winner);
        }
    }

    private async Task DeleteBlobIfUnreferencedAsync(string mailbox, string blobName, string winnerKey, CancellationToken cancellationToken)
    {
        var winner = await GetAsync(mailbox, winnerKey, cancellationToken).ConfigureAwait(false);
        if (winner is not null && winner.BlobName != blobName)
        {
            // Our bytes differ from the winner's (other trace headers) and no row names our blob: the
            // same bytes would have had the same dedup key, which is the winner's.
            await storage.Spool.GetBlobClient(blobName).DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entity in storage.Messages.QueryAsync<TableEntity>(MessageRange(mailbox, afterKey), maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
            yield return FromEntity(entity);
    }

    /// <inheritdoc />
    public async Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken)
    {
        var row = await storage.Messages.GetEntityIfExistsAsync<TableEntity>(mailbox, messageKey, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? FromEntity(row.Value!) : null;
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var e in storage.Messages.QueryAsync<TableEntity>(MessageRange(mailbox, afterKey), maxPerPage: 1000,
            select: IndexColumns, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            yield return new SpoolIndexEntry(e.RowKey, e.GetString("Uidl"), e.GetInt64("Pop3Size") ?? 0, e.GetInt64("RawLength") ?? 0,
                e.GetString("Sha256"), e.GetString("BlobName"));
        }
    }

    private static readonly string[] IndexColumns = ["RowKey", "Uidl", "Pop3Size", "RawLength", "Sha256", "BlobName"];

    /// <inheritdoc />
    public async Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken)
    {
        await foreach (var page in storage.Messages.QueryAsync<TableEntity>(MessageRange(mailbox, null), maxPerPage: 1,
            select: ["RowKey"], cancellationToken: cancellationToken).AsPages(pageSizeHint: 1).ConfigureAwait(false))
        {
            if (page.Values.Count > 0)
                return page.Values[0].RowKey;
            if (page.ContinuationToken is null)
                break;
        }
        return null;
    }

    /// <inheritdoc />
    public async Task<string?> ChangeTokenAsync(string mailbox, CancellationToken cancellationToken)
    {
        var row = await storage.Messages.GetEntityIfExistsAsync<TableEntity>(mailbox, StorageNames.HeadRowKey,
            select: ["Changed"], cancellationToken: cancellationToken).ConfigureAwait(false);
        // No change row: nothing was committed since change rows exist, which is a state of its own ("").
        return row.HasValue ? row.Value!.ETag.ToString() : "";
    }

    /// <summary>
    /// Replaces the mailbox's change row, inside the transaction that commits or removes messages: its new ETag tells
    /// readers something changed (see <see cref="ChangeTokenAsync"/>).
    /// </summary>
    internal TableTransactionAction ChangeAction(string mailbox) => new(TableTransactionActionType.UpsertReplace,
        new TableEntity(mailbox, StorageNames.HeadRowKey) { ["Changed"] = _clock.GetUtcNow() });

    private static string MessageRange(string mailbox, string? afterKey) => TableClient.CreateQueryFilter(
        $"PartitionKey eq {mailbox} and RowKey gt {afterKey ?? StorageNames.MessageRowPrefix} and RowKey lt {StorageNames.PrefixEnd(StorageNames.MessageRowPrefix)}");

    /// <inheritdoc />
    public async Task<Stream> OpenBlobAsync(string blobName, CancellationToken cancellationToken) =>
        await storage.Spool.GetBlobClient(blobName).OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), cancellationToken).ConfigureAwait(false);

    private static TableEntity ToEntity(string mailbox, string messageKey, string blobName, IngestedMessage m)
    {
        var s = m.Summary;
        return new TableEntity(mailbox, messageKey)
        {
            ["Uidl"] = StorageNames.Uidl(m.DedupKey),
            ["BlobName"] = blobName,
            ["RawLength"] = m.Figures.RawLength,
            ["Pop3Size"] = m.Figures.Pop3Size,
            ["Sha256"] = m.Figures.Sha256,
            ["BodySha256"] = m.Figures.BodySha256,
            ["DedupKey"] = m.DedupKey,
            ["SourceAccount"] = m.SourceAccount,
            ["SourceKey"] = m.SourceKey,
            ["ReceivedAt"] = m.ReceivedAt,
            ["From"] = s.From,
            ["To"] = s.To,
            ["Subject"] = s.Subject,
            ["Date"] = s.Date,
            ["MessageId"] = s.MessageId,
            ["ListId"] = s.ListId,
            ["AutoSubmitted"] = s.AutoSubmitted,
            ["Precedence"] = s.Precedence,
            ["AttachmentCount"] = s.AttachmentCount,
            ["AttachmentNames"] = JsonSerializer.Serialize(s.AttachmentNames),
            ["Malformed"] = s.Malformed,
            ["ParseError"] = s.ParseError,
        };
    }

    internal static SpoolMessage FromEntity(TableEntity e) => new()
    {
        Mailbox = e.PartitionKey,
        MessageKey = e.RowKey,
        Uidl = e.GetString("Uidl"),
        BlobName = e.GetString("BlobName"),
        RawLength = e.GetInt64("RawLength") ?? 0,
        Pop3Size = e.GetInt64("Pop3Size") ?? 0,
        Sha256 = e.GetString("Sha256"),
        DedupKey = e.GetString("DedupKey"),
        SourceAccount = e.GetString("SourceAccount"),
        SourceKey = e.GetString("SourceKey"),
        ReceivedAt = e.GetDateTimeOffset("ReceivedAt") ?? default,
        Summary = new MessageSummary
        {
            From = e.GetString("From"),
            To = e.GetString("To"),
            Subject = e.GetString("Subject"),
            Date = e.GetDateTimeOffset("Date"),
            MessageId = e.GetString("MessageId"),
            ListId = e.GetString("ListId"),
            AutoSubmitted = e.GetString("AutoSubmitted"),
            Precedence = e.GetString("Precedence"),
            AttachmentCount = e.GetInt32("AttachmentCount") ?? 0,
            AttachmentNames = JsonSerializer.Deserialize<string[]>(e.GetString("AttachmentNames") ?? "[]") ?? [],
            Malformed = e.GetBoolean("Malformed") ?? false,
            ParseError = e.GetString("ParseError"),
        },
    };
}
