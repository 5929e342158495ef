using System.Runtime.CompilerServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs.Models;
using CloudSpool.Core.Ingest;
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

    /// <summary>Messages a segment holds at most: with its row, its bucket rows and the change row, one transaction of at most 100 entities.</summary>
    internal const int SegmentMembers = 49;

    /// <summary>Attempts of a commit or removal whose bucket rows another writer changed in between.</summary>
    private const int ConflictAttempts = 8;

    private readonly DedupIndex _dedup = new(storage.Messages);
    private readonly LegacyRows _legacy = new(storage.Messages, clock ?? TimeProvider.System);
    private readonly SegmentBlobs _segments = new(storage.Spool);
    private readonly SegmentTable _segmentRows = new(storage.Messages);

    internal DedupIndex Dedup => _dedup;
    internal LegacyRows Legacy => _legacy;
    internal SegmentTable SegmentRows => _segmentRows;
    internal SegmentBlobs SegmentBlobs => _segments;

    /// <inheritdoc />
    public async Task<IReadOnlyList<StoreResult>> CommitAsync(string mailbox, IReadOnlyList<IngestedMessage> messages, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var results = new StoreResult?[messages.Count];
        // Every key of this call is taken first: the keys of the messages of a pack then lie between its first and last
        // member's, which the segments record, so retention can tell with one short range query whether any message of the
        // pack is left (see AzureSpoolMaintenance.RemoveAsync).
        var keys = new string[messages.Count];
        var packs = new Dictionary<string, SegmentPack>(StringComparer.Ordinal);
        for (var i = 0; i < messages.Count; i++)
        {
            keys[i] = StorageNames.MessageRowKey(NextTicks(), messages[i].Figures.Sha256);
            if (messages[i].Pack is { } slot)
                packs[slot.BlobName] = packs.TryGetValue(slot.BlobName, out var p) ? p with { LastKey = keys[i] } : new SegmentPack(slot.BlobName, keys[i], keys[i]);
        }

        // A dedup key twice in one call: later twins take the first one's outcome.
        var firsts = new Dictionary<string, int>(StringComparer.Ordinal);
        var twins = new List<int>();
        for (var i = 0; i < messages.Count; i++)
        {
            if (!firsts.TryAdd(messages[i].DedupKey, i))
                twins.Add(i);
        }
        foreach (var chunk in Segmented(firsts.Values.Order(), i => keys[i]))
            await CommitSegmentAsync(mailbox, messages, keys, packs, chunk, results, cancellationToken).ConfigureAwait(false);
        foreach (var index in twins)
            results[index] = new StoreResult(StoreOutcome.Duplicate, results[firsts[messages[index].DedupKey]]!.MessageKey);

        // Bytes nobody names are deleted at once: a message's own blob when the mailbox held the message already, a pack
        // when none of its messages was new. (Same name, same bytes: a duplicate's own blob may be the winner's too.)
        for (var i = 0; i < messages.Count; i++)
        {
            if (results[i]!.Outcome == StoreOutcome.Duplicate && messages[i].Pack is null)
                await DeleteBlobIfUnreferencedAsync(mailbox, BlobNameOf(mailbox, messages[i]), [results[i]!.MessageKey], cancellationToken).ConfigureAwait(false);
        }
        foreach (var pack in packs.Keys)
        {
            var members = Enumerable.Range(0, messages.Count).Where(i => messages[i].Pack?.BlobName == pack).ToList();
            if (members.All(i => results[i]!.Outcome == StoreOutcome.Duplicate))
                await DeleteBlobIfUnreferencedAsync(mailbox, pack, members.Select(i => results[i]!.MessageKey), cancellationToken).ConfigureAwait(false);
        }
        return results.Select(r => r!).ToList();
    }

    /// <summary>Items in key order, cut into segments of at most <see cref="SegmentMembers"/> within <see cref="SegmentTable.MaxSpan"/>.</summary>
    internal static IEnumerable<T[]> Segmented<T>(IEnumerable<T> items, Func<T, string> key)
    {
        var segment = new List<T>(SegmentMembers);
        foreach (var item in items)
        {
            if (segment.Count == SegmentMembers || (segment.Count > 0 && !SegmentTable.WithinSpan(key(segment[0]), key(item))))
            {
                yield return [.. segment];
                segment.Clear();
            }
            segment.Add(item);
        }
        if (segment.Count > 0)
            yield return [.. segment];
    }

    /// <summary>
    /// Commits one segment: the messages of <paramref name="chunk"/> the mailbox does not hold yet get a segment blob
    /// (their full metadata), then one transaction adds the segment row (their index), their dedup entries and a new change
    /// row. A transaction refused because another writer changed a bucket in between is tried again from the lookup.
    /// </summary>
    private async Task CommitSegmentAsync(string mailbox, IReadOnlyList<IngestedMessage> messages, string[] keys,
        Dictionary<string, SegmentPack> packs, int[] chunk, StoreResult?[] results, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            var held = await Task.WhenAll(chunk.Select(i => FindHeldAsync(mailbox, messages[i].DedupKey, cancellationToken))).ConfigureAwait(false);
            var news = new List<int>(chunk.Length);
            for (var c = 0; c < chunk.Length; c++)
            {
                if (held[c] is { } winner)
                    results[chunk[c]] = new StoreResult(StoreOutcome.Duplicate, winner);
                else
                    news.Add(chunk[c]);
            }
            if (news.Count == 0)
                return;

            var segmentPacks = news.Select(i => messages[i].Pack?.BlobName).OfType<string>().Distinct(StringComparer.Ordinal).Select(b => packs[b]).ToList();
            var members = news.Select(i => MemberOf(messages[i], keys[i], segmentPacks)).ToList();
            var records = news.Select(i => SegmentRecord.Of(keys[i], messages[i])).ToList();
            if (await TrySubmitSegmentAsync(mailbox, IngestFigures.SizeRule, segmentPacks, members, records, [], cancellationToken).ConfigureAwait(false))
            {
                foreach (var index in news)
                    results[index] = new StoreResult(StoreOutcome.Stored, keys[index]);
                return;
            }
            if (attempt >= ConflictAttempts)
                throw new InvalidOperationException($"the commit to {mailbox} conflicted with other writers {attempt} times in a row");
        }
    }

    /// <summary>
    /// Writes a segment's blob, then adds its row, its messages' dedup entries, <paramref name="more"/> and a new change row
    /// in one transaction. False when the transaction was refused because another writer changed a bucket (or added its next
    /// row) since it was read: nothing was committed, the blob is deleted and the buckets are read again next time.
    /// </summary>
    internal async Task<bool> TrySubmitSegmentAsync(string mailbox, int sizeRule, IReadOnlyList<SegmentPack> packs, IReadOnlyList<SegmentMember> members,
        IReadOnlyList<SegmentRecord> records, IReadOnlyList<TableTransactionAction> more, CancellationToken cancellationToken)
    {
        var lastKey = records[^1].Key;
        var blobName = StorageNames.SegmentBlobName(mailbox, lastKey);
        await _segments.WriteAsync(blobName, records, cancellationToken).ConfigureAwait(false);

        var actions = new List<TableTransactionAction>
        {
            new(TableTransactionActionType.Add, new TableEntity(mailbox, StorageNames.SegmentRowKey(lastKey))
            {
                ["First"] = records[0].Key,
                ["Blob"] = blobName,
                ["Index"] = SegmentIndex.Encode(sizeRule, packs, members),
            }),
        };
        var buckets = new List<(string Bucket, List<DedupIndex.Row> Rows, int From, int To)>();
        foreach (var group in records.GroupBy(r => DedupBuckets.BucketOf(r.DedupKey), StringComparer.Ordinal))
        {
            var rows = await _dedup.RowsAsync(mailbox, group.Key, cancellationToken).ConfigureAwait(false);
            var written = new List<DedupIndex.Row>();
            var from = actions.Count;
            actions.AddRange(DedupIndex.AddActions(mailbox, group.Key, rows, group.Select(r => DedupBuckets.Entry(r.DedupKey, r.Key)).ToList(), written));
            buckets.Add((group.Key, written, from, actions.Count));
        }
        actions.AddRange(more);
        actions.Add(ChangeAction(mailbox));
        try
        {
            var answers = await storage.Messages.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
            foreach (var (bucket, rows, from, to) in buckets)
            {
                var etags = new Dictionary<string, ETag?>(StringComparer.Ordinal);
                for (var a = from; a < to; a++)
                    etags[actions[a].Entity.RowKey] = answers.Value.Count > a ? answers.Value[a].Headers.ETag : null;
                _dedup.Keep(mailbox, bucket, rows, etags);
            }
            return true;
        }
        catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412 or 404)
        {
            foreach (var (bucket, _, _, _) in buckets)
                _dedup.Forget(mailbox, bucket);
            await _segments.DeleteAsync(blobName, cancellationToken).ConfigureAwait(false);
            return false;
        }
        catch
        {
            // The outcome is unknown (the answer may be lost after a commit): the cached buckets may be stale, and the
            // segment blob stays (a retry finds its messages held; the repair check deletes it if nothing names it).
            foreach (var (bucket, _, _, _) in buckets)
                _dedup.Forget(mailbox, bucket);
            throw;
        }
    }

    private static SegmentMember MemberOf(IngestedMessage m, string key, List<SegmentPack> packs)
    {
        SpoolKeys.TryGetTicks(key, out var ticks);
        var pack = m.Pack is { } slot ? packs.FindIndex(p => p.BlobName == slot.BlobName) : -1;
        return new SegmentMember(ticks, m.Figures.Sha256, SpoolUidl.For(m.DedupKey), m.Figures.RawLength, m.Figures.Pop3Size, pack, m.Pack?.Offset ?? 0);
    }

    /// <summary>The key of the message the mailbox holds under this dedup key: in its buckets, or in a row of an earlier version.</summary>
    private async Task<string?> FindHeldAsync(string mailbox, string dedupKey, CancellationToken cancellationToken) =>
        await _dedup.FindAsync(mailbox, dedupKey, cancellationToken).ConfigureAwait(false)
        ?? (await _legacy.AnyAsync(mailbox, cancellationToken).ConfigureAwait(false)
            ? await _legacy.FindByDedupKeyAsync(mailbox, dedupKey, cancellationToken).ConfigureAwait(false)
            : null);

    private static string BlobNameOf(string mailbox, IngestedMessage m) => m.Pack?.BlobName ?? StorageNames.BlobName(mailbox, m.Figures.Sha256);

    /// <summary>Deletes a blob unless one of the <paramref name="winnerKeys"/> (the messages that count) names it.</summary>
    private async Task DeleteBlobIfUnreferencedAsync(string mailbox, string blobName, IEnumerable<string> winnerKeys, CancellationToken cancellationToken)
    {
        foreach (var key in winnerKeys.Distinct(StringComparer.Ordinal))
        {
            var winner = await GetIndexEntryAsync(mailbox, key, cancellationToken).ConfigureAwait(false);
            if (winner is null || winner.BlobName == blobName)
                return; // cannot tell, or still named: keep it (the repair check deletes what nobody names)
        }
        await storage.Spool.GetBlobClient(blobName).DeleteIfExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) =>
        MergeByKeyAsync(_legacy.ListAsync(mailbox, afterKey, null, cancellationToken), ListSegmentMessagesAsync(mailbox, afterKey, cancellationToken), m => m.MessageKey, cancellationToken);

    private async IAsyncEnumerable<SpoolMessage> ListSegmentMessagesAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var (segment, i) in _segmentRows.LiveAsync(mailbox, afterKey, cancellationToken).ConfigureAwait(false))
            yield return segment.MessageOf(i, await _segments.ReadAsync(segment.Blob, cancellationToken).ConfigureAwait(false));
    }

    /// <inheritdoc />
    public async Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken)
    {
        if (await _legacy.GetAsync(mailbox, messageKey, cancellationToken).ConfigureAwait(false) is { } old)
            return old;
        if (await _segmentRows.FindAsync(mailbox, messageKey, cancellationToken).ConfigureAwait(false) is not { } found)
            return null;
        var records = await _segments.ReadAsync(found.Segment.Blob, cancellationToken).ConfigureAwait(false);
        return found.Segment.MessageOf(found.Index, records);
    }

    /// <summary>The index entry of one message, without reading its segment's blob.</summary>
    internal async Task<SpoolIndexEntry?> GetIndexEntryAsync(string mailbox, string messageKey, CancellationToken cancellationToken)
    {
        if (await _legacy.GetAsync(mailbox, messageKey, cancellationToken).ConfigureAwait(false) is { } old)
            return new SpoolIndexEntry(old.MessageKey, old.Uidl, old.Pop3Size, old.RawLength, old.Sha256, old.BlobName, old.Pack?.Offset);
        return await _segmentRows.FindAsync(mailbox, messageKey, cancellationToken).ConfigureAwait(false) is { } found
            ? found.Segment.IndexEntryOf(found.Index)
            : null;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Rows of earlier versions are read whole before the segments: a message moved into a segment meanwhile (see
    /// <see cref="SpoolCompaction"/>) is then listed twice, once is let out, rather than not at all.
    /// </remarks>
    public async IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var old = new List<SpoolIndexEntry>();
        await foreach (var e in _legacy.ListIndexAsync(mailbox, afterKey, cancellationToken).ConfigureAwait(false))
            old.Add(e);
        await foreach (var e in MergeByKeyAsync(old.ToAsyncEnumerable(), ListSegmentIndexAsync(mailbox, afterKey, cancellationToken), e => e.MessageKey, cancellationToken).ConfigureAwait(false))
            yield return e;
    }

    private async IAsyncEnumerable<SpoolIndexEntry> ListSegmentIndexAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var (segment, i) in _segmentRows.LiveAsync(mailbox, afterKey, cancellationToken).ConfigureAwait(false))
            yield return segment.IndexEntryOf(i);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Segment rows come by their last key, and a row can hold keys up to <see cref="SegmentTable.MaxSpan"/> before the rows
    /// read before it, so <see cref="ListIndexAsync"/> holds every decoded row within that span: on a mailbox committed
    /// within a few hours (an import, a first pull), the whole mailbox. Here each row is let out as it is read. Rows of
    /// earlier versions are still read first, for the reason given at <see cref="ListIndexAsync"/>, and their keys are not
    /// listed again from a segment.
    /// </remarks>
    public async IAsyncEnumerable<SpoolIndexEntry> ScanIndexAsync(string mailbox, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var old = new HashSet<string>(StringComparer.Ordinal);
        await foreach (var e in _legacy.ListIndexAsync(mailbox, null, cancellationToken).ConfigureAwait(false))
        {
            old.Add(e.MessageKey);
            yield return e;
        }
        await foreach (var segment in _segmentRows.RowsAsync(mailbox, null, cancellationToken).ConfigureAwait(false))
        {
            foreach (var i in segment.LiveAfter(null))
            {
                var entry = segment.IndexEntryOf(i);
                if (old.Count == 0 || !old.Contains(entry.MessageKey))
                    yield return entry;
            }
        }
    }

    /// <inheritdoc />
    public async Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken)
    {
        var old = await _legacy.FirstKeyAsync(mailbox, cancellationToken).ConfigureAwait(false);
        var first = await _segmentRows.FirstKeyAsync(mailbox, cancellationToken).ConfigureAwait(false);
        return old is null ? first : first is null || string.CompareOrdinal(old, first) < 0 ? old : first;
    }

    /// <summary>Two streams in key order as one; a key in both is let out once.</summary>
    private static async IAsyncEnumerable<T> MergeByKeyAsync<T>(IAsyncEnumerable<T> first, IAsyncEnumerable<T> second, Func<T, string> key,
        [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var a = first.GetAsyncEnumerator(cancellationToken);
        await using var b = second.GetAsyncEnumerator(cancellationToken);
        var hasA = await a.MoveNextAsync().ConfigureAwait(false);
        var hasB = await b.MoveNextAsync().ConfigureAwait(false);
        while (hasA || hasB)
        {
            var order = !hasA ? 1 : !hasB ? -1 : string.CompareOrdinal(key(a.Current), key(b.Current));
            if (order <= 0)
            {
                yield return a.Current;
                hasA = await a.MoveNextAsync().ConfigureAwait(false);
                if (order == 0)
                    hasB = await b.MoveNextAsync().ConfigureAwait(false);
            }
            else
            {
                yield return b.Current;
                hasB = await b.MoveNextAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Takes a message out of its segment: marks it gone in the segment row (deleting the row with its last member), takes
    /// its dedup entry out of its bucket and replaces the change row, in one transaction. Returns the segment's blob when the
    /// row went (the caller deletes it), else null; nothing when the message is not there (removed before).
    /// </summary>
    internal async Task<string?> RemoveFromSegmentAsync(string mailbox, string messageKey, string dedupKey, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (await _segmentRows.FindAsync(mailbox, messageKey, cancellationToken).ConfigureAwait(false) is not { } found)
                return null;
            var (segment, index) = found;
            var gone = new HashSet<int>(segment.Gone) { index };
            var emptied = gone.Count == segment.Members.Count;
            var actions = new List<TableTransactionAction>
            {
                emptied
                    ? new(TableTransactionActionType.Delete, new TableEntity(mailbox, segment.RowKey), segment.ETag)
                    : new(TableTransactionActionType.UpdateMerge, new TableEntity(mailbox, segment.RowKey) { ["Gone"] = SegmentIndex.EncodeGone(gone, segment.Members.Count) }, segment.ETag),
            };
            var bucket = DedupBuckets.BucketOf(dedupKey);
            var rows = await _dedup.RowsAsync(mailbox, bucket, cancellationToken).ConfigureAwait(false);
            var written = new List<DedupIndex.Row>();
            var bucketAction = DedupIndex.RemoveAction(mailbox, rows, dedupKey, messageKey, written);
            if (bucketAction is not null)
                actions.Add(bucketAction);
            actions.Add(ChangeAction(mailbox));
            try
            {
                var answers = await storage.Messages.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
                if (bucketAction is not null)
                {
                    var etag = bucketAction.ActionType == TableTransactionActionType.Delete ? (ETag?)null : answers.Value.Count > 1 ? answers.Value[1].Headers.ETag : null;
                    _dedup.Keep(mailbox, bucket, written, bucketAction.ActionType == TableTransactionActionType.Delete
                        ? new Dictionary<string, ETag?>() : new Dictionary<string, ETag?> { [bucketAction.Entity.RowKey] = etag });
                }
                return emptied ? segment.Blob : null;
            }
            catch (TableTransactionFailedException ex) when (ex.Status is 409 or 412 or 404)
            {
                _dedup.Forget(mailbox, bucket);
                if (attempt >= ConflictAttempts)
                    throw new InvalidOperationException($"the removal of {messageKey} from {mailbox} conflicted with other writers {attempt} times in a row", ex);
            }
            catch
            {
                _dedup.Forget(mailbox, bucket);
                throw;
            }
        }
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

    /// <inheritdoc />
    public async Task<Stream> OpenContentAsync(string blobName, long? offset, long length, CancellationToken cancellationToken)
    {
        var blob = storage.Spool.GetBlobClient(blobName);
        // One request, streamed: a message's own blob whole, or one message of a pack as its range. (OpenRead would ask for
        // the blob's properties first, doubling the requests of a reader that misses its cache on every message.) The SDK's
        // stream resumes a broken download with ranges on the same ETag, so a changed blob fails rather than mixes.
        if (offset is not null && length == 0)
            return new MemoryStream([], writable: false);
        var options = offset is null ? new BlobDownloadOptions() : new BlobDownloadOptions { Range = new HttpRange(offset.Value, length) };
        var response = await blob.DownloadStreamingAsync(options, cancellationToken).ConfigureAwait(false);
        return response.Value.Content;
    }
}
