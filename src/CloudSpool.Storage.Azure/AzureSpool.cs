using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
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
    public async Task<IReadOnlyList<PackSlot>> WritePackAsync(string mailbox, IReadOnlyList<(IngestedMessage Message, Stream Content)> members, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(members);
        var slots = new PackSlot[members.Count];
        var name = StorageNames.PackBlobName(mailbox, _clock.GetUtcNow());
        long offset = 0;
        for (var i = 0; i < members.Count; i++)
        {
            var (message, content) = members[i];
            if (content.Length != message.Figures.RawLength)
                throw new ArgumentException($"content of member {i} is {content.Length} bytes, its figures say {message.Figures.RawLength}", nameof(members));
            slots[i] = new PackSlot(name, offset);
            offset += content.Length;
        }
        // A new name each time, written once: a pack is never changed, only deleted when no message names it any more.
        await using var packed = new ConcatenatedStream(members.Select(m => m.Content).ToList());
        await storage.Spool.GetBlobClient(name).UploadAsync(packed, new BlobUploadOptions
        {
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/octet-stream" },
        }, cancellationToken).ConfigureAwait(false);
        return slots;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoreResult>> CommitAsync(string mailbox, IReadOnlyList<IngestedMessage> messages, CancellationToken cancellationToken)
    {
        var results = new StoreResult?[messages.Count];
        // Every key of this call is taken first: the keys of the messages of a pack then lie between its first and last
        // member's, which every row of the pack records, so retention can tell with one short range query whether any
        // message of the pack is left (see AzureSpoolMaintenance.RemoveAsync).
        var keys = new string[messages.Count];
        var packs = new Dictionary<string, List<int>>(StringComparer.Ordinal); // pack -> its members' indexes, in order
        for (var i = 0; i < messages.Count; i++)
        {
            keys[i] = StorageNames.MessageRowKey(NextTicks(), messages[i].Figures.Sha256);
            if (messages[i].Pack is not { } slot)
                continue;
            if (!packs.TryGetValue(slot.BlobName, out var members))
                packs[slot.BlobName] = members = [];
            members.Add(i);
        }
        SpoolPackPlace? PlaceOf(IngestedMessage m) =>
            m.Pack is { } slot ? new SpoolPackPlace(slot.Offset, keys[packs[slot.BlobName][0]], keys[packs[slot.BlobName][^1]]) : null;

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
            foreach (var index in chunk)
            {
                var m = messages[index];
                actions.Add(new TableTransactionAction(TableTransactionActionType.Add, ToEntity(mailbox, keys[index], BlobNameOf(mailbox, m), PlaceOf(m), m)));
                actions.Add(new TableTransactionAction(TableTransactionActionType.Add, new TableEntity(mailbox, StorageNames.DedupRowKey(m.DedupKey)) { ["MessageKey"] = keys[index] }));
            }
            try
            {
                await storage.Messages.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
                foreach (var index in chunk)
                    results[index] = new StoreResult(StoreOutcome.Stored, keys[index]);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 409)
            {
                // Some message of the batch is held already (another account, an earlier crashed run):
                // commit them one by one, under the same keys, to tell which.
                foreach (var index in chunk)
                    results[index] = await CommitOneAsync(mailbox, messages[index], keys[index], PlaceOf(messages[index]), cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var index in twins)
            results[index] = new StoreResult(StoreOutcome.Duplicate, results[firsts[messages[index].DedupKey]]!.MessageKey);

        // Bytes nobody names are deleted at once: a message's own blob when the mailbox held the message already, a pack
        // when none of its messages was new. (Same name, same bytes: a duplicate's own blob may be the winner's too.)
        for (var i = 0; i < messages.Count; i++)
        {
            if (results[i]!.Outcome == StoreOutcome.Duplicate && messages[i].Pack is null)
                await DeleteBlobIfUnreferencedAsync(mailbox, BlobNameOf(mailbox, messages[i]), results[i]!.MessageKey, cancellationToken).ConfigureAwait(false);
        }
        foreach (var (pack, members) in packs)
        {
            if (members.All(i => results[i]!.Outcome == StoreOutcome.Duplicate))
                await DeleteBlobIfUnreferencedAsync(mailbox, pack, members.Select(i => results[i]!.MessageKey), cancellationToken).ConfigureAwait(false);
        }
        return results.Select(r => r!).ToList();
    }

    private static string BlobNameOf(string mailbox, IngestedMessage m) => m.Pack?.BlobName ?? StorageNames.BlobName(mailbox, m.Figures.Sha256);

    private async Task<StoreResult> CommitOneAsync(string mailbox, IngestedMessage message, string messageKey, SpoolPackPlace? place, CancellationToken cancellationToken)
    {
        var row = ToEntity(mailbox, messageKey, BlobNameOf(mailbox, message), place, message);
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
            // The mailbox holds this message already (same dedup key), or this very row was committed by an attempt
            // whose answer was lost: either way the dedup row names the message that counts.
            var winner = await FindByDedupKeyAsync(mailbox, message.DedupKey, cancellationToken).ConfigureAwait(false)
                         ?? throw new InvalidOperationException($"dedup row for {message.DedupKey} conflicted but cannot be read", ex);
            return new StoreResult(StoreOutcome.Duplicate, winner);
        }
    }

    /// <summary>Deletes a blob unless one of the <paramref name="winnerKeys"/> (the messages that count) names it.</summary>
    private async Task DeleteBlobIfUnreferencedAsync(string mailbox, string blobName, IEnumerable<string> winnerKeys, CancellationToken cancellationToken)
    {
        foreach (var key in winnerKeys.Distinct(StringComparer.Ordinal))
        {
            var winner = await GetAsync(mailbox, key, cancellationToken).ConfigureAwait(false);
            if (winner is null || winner.BlobName == blobName)
                return; // cannot tell, or still named: keep it (the repair check deletes what nobody names)
        }
        await storage.Spool.GetBlobClient(blobName).DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    private Task DeleteBlobIfUnreferencedAsync(string mailbox, string blobName, string winnerKey, CancellationToken cancellationToken) =>
        DeleteBlobIfUnreferencedAsync(mailbox, blobName, [winnerKey], cancellationToken);

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
            var pop3Size = e.GetInt64("Pop3Size") ?? 0;
            var rawLength = e.GetInt64("RawLength") ?? 0;
            yield return new SpoolIndexEntry(e.RowKey, e.GetString("Uidl"), pop3Size, rawLength,
                e.GetString("Sha256"), e.GetString("BlobName"), e.GetInt64("BlobOffset"),
                BareCrAsCrlf: e.GetInt32("Pop3SizeRule") is null && pop3Size > rawLength);
        }
    }

    /// <remarks>
    /// <c>Pop3SizeRule</c> (<see cref="IngestFigures.SizeRule"/>) is absent from rows written before size rule 2, whose
    /// <c>Pop3Size</c> counted every bare CR or LF as CRLF. Such a row with a size equal to its length has neither, so its
    /// size is right under either rule; one with a larger size may have bare CRs (or only bare LFs, which both rules count
    /// alike): the edge serves it by the old rule, so RETR still sends what LIST announces (byte for byte as before when it
    /// has bare CRs, and as under rule 2 when it has none).
    /// </remarks>
    private static readonly string[] IndexColumns = ["RowKey", "Uidl", "Pop3Size", "Pop3SizeRule", "RawLength", "Sha256", "BlobName", "BlobOffset"];

    /// <inheritdoc />
    public Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken) =>
        FirstRowKeyAsync(MessageRange(mailbox, null), cancellationToken);

    /// <summary>
    /// The smallest row key of the messages table matching <paramref name="filter"/>, or null: one row asked for, though
    /// the service may answer with empty pages (and a continuation) before the first match.
    /// </summary>
    internal async Task<string?> FirstRowKeyAsync(string filter, CancellationToken cancellationToken)
    {
        await foreach (var page in storage.Messages.QueryAsync<TableEntity>(filter, maxPerPage: 1,
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
    public async Task<Stream> OpenContentAsync(string blobName, long? offset, long length, CancellationToken cancellationToken)
    {
        var blob = storage.Spool.GetBlobClient(blobName);
        if (offset is null)
            return await blob.OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), cancellationToken).ConfigureAwait(false);
        // One message of a pack: its range, streamed in one request (packed messages are small).
        if (length == 0)
            return new MemoryStream([], writable: false);
        var response = await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(offset.Value, length) }, cancellationToken).ConfigureAwait(false);
        return response.Value.Content;
    }

    /// <summary>
    /// The header summary of a message row as one JSON property: a dozen properties fewer per row for the table service
    /// to parse, index and keep (against Azurite each one costs CPU on every insert and every save of its database).
    /// Unicode as is; quotes and control characters escaped. The names of <see cref="MessageSummary"/>'s properties are
    /// part of the stored format: renaming one loses that field in every row written before.
    /// </summary>
    private static readonly JsonSerializerOptions SummaryJson = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };

    /// <summary>
    /// The longest summary kept as one property (characters; a table property holds at most 64 KiB of UTF-16). Every field
    /// is bounded (<see cref="MessageSummary.MaxFieldLength"/>), but a summary of fields full of characters JSON escapes
    /// can be longer: such a row keeps a property per field, as rows written before the summary property did.
    /// </summary>
    private const int MaxSummaryChars = 30_000;

    private static TableEntity ToEntity(string mailbox, string messageKey, string blobName, SpoolPackPlace? pack, IngestedMessage m)
    {
        var entity = new TableEntity(mailbox, messageKey)
        {
            ["Uidl"] = StorageNames.Uidl(m.DedupKey),
            ["BlobName"] = blobName,
            ["RawLength"] = m.Figures.RawLength,
            ["Pop3Size"] = m.Figures.Pop3Size,
            ["Pop3SizeRule"] = IngestFigures.SizeRule,
            ["Sha256"] = m.Figures.Sha256,
            ["DedupKey"] = m.DedupKey,
            ["SourceAccount"] = m.SourceAccount,
            ["SourceKey"] = m.SourceKey,
            ["ReceivedAt"] = m.ReceivedAt,
        };
        var summary = JsonSerializer.Serialize(m.Summary, SummaryJson);
        if (summary.Length <= MaxSummaryChars)
            entity["Summary"] = summary;
        else
            AddSummaryColumns(entity, m.Summary);
        if (pack is not null)
        {
            entity["BlobOffset"] = pack.Offset;
            entity["PackFirst"] = pack.FirstKey;
            entity["PackLast"] = pack.LastKey;
        }
        return entity;
    }

    /// <summary>
    /// The summary as a property per field: rows written before the summary property, and summaries too long for one. Each
    /// field fits a property (at most <see cref="MessageSummary.MaxFieldLength"/> characters); the attachment names, as
    /// JSON, keep as many of the first names as fit one (escaped, 50 names of control characters would not).
    /// </summary>
    private static void AddSummaryColumns(TableEntity entity, MessageSummary s)
    {
        var names = JsonSerializer.Serialize(s.AttachmentNames, SummaryJson);
        for (var keep = s.AttachmentNames.Count - 1; names.Length > MaxSummaryChars && keep >= 0; keep--)
            names = JsonSerializer.Serialize(s.AttachmentNames.Take(keep), SummaryJson);

        entity["From"] = s.From;
        entity["To"] = s.To;
        entity["Subject"] = s.Subject;
        entity["Date"] = s.Date;
        entity["MessageId"] = s.MessageId;
        entity["ListId"] = s.ListId;
        entity["AutoSubmitted"] = s.AutoSubmitted;
        entity["Precedence"] = s.Precedence;
        entity["AttachmentCount"] = s.AttachmentCount;
        entity["AttachmentNames"] = names;
        entity["Malformed"] = s.Malformed;
        entity["ParseError"] = s.ParseError;
    }

    private static MessageSummary SummaryOf(TableEntity e)
    {
        if (e.GetString("Summary") is not { } json)
            return SummaryFromColumns(e);
        try
        {
            var summary = JsonSerializer.Deserialize<MessageSummary>(json, SummaryJson) ?? new MessageSummary();
            return summary.AttachmentNames is null ? summary with { AttachmentNames = [] } : summary;
        }
        catch (JsonException ex)
        {
            // A damaged row must not make the mailbox unreadable: the message is still listed, served and forwarded.
            return new MessageSummary { Malformed = true, ParseError = $"the stored summary cannot be read: {ex.Message}" };
        }
    }

    private static MessageSummary SummaryFromColumns(TableEntity e) => new()
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
    };

    private static SpoolPackPlace? PackOf(TableEntity e) =>
        e.GetInt64("BlobOffset") is { } offset ? new SpoolPackPlace(offset, e.GetString("PackFirst") ?? "", e.GetString("PackLast") ?? "") : null;

    internal static SpoolMessage FromEntity(TableEntity e) => new()
    {
        Mailbox = e.PartitionKey,
        MessageKey = e.RowKey,
        Uidl = e.GetString("Uidl"),
        BlobName = e.GetString("BlobName"),
        Pack = PackOf(e),
        RawLength = e.GetInt64("RawLength") ?? 0,
        Pop3Size = e.GetInt64("Pop3Size") ?? 0,
        Sha256 = e.GetString("Sha256"),
        DedupKey = e.GetString("DedupKey"),
        SourceAccount = e.GetString("SourceAccount"),
        SourceKey = e.GetString("SourceKey"),
        ReceivedAt = e.GetDateTimeOffset("ReceivedAt") ?? default,
        Summary = SummaryOf(e),
    };
}
