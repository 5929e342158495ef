using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// One message's whole metadata in its segment's blob, a line of JSON each. It repeats the index fields of the segment row,
/// so the blob alone can tell everything about its messages. The property names are part of the stored format.
/// </summary>
internal sealed record SegmentRecord(string Key, string DedupKey, string Sha256, long RawLength, long Pop3Size,
    string SourceAccount, string SourceKey, DateTimeOffset ReceivedAt, MessageSummary Summary)
{
    public static SegmentRecord Of(string key, IngestedMessage m) =>
        new(key, m.DedupKey, m.Figures.Sha256, m.Figures.RawLength, m.Figures.Pop3Size, m.SourceAccount, m.SourceKey, m.ReceivedAt, m.Summary);
}

/// <summary>A segment row, decoded: up to 49 messages' index in one table row, their full metadata in the blob it names.</summary>
internal sealed record SegmentRow(string Mailbox, string RowKey, ETag ETag, string First, string Blob, int SizeRule,
    IReadOnlyList<SegmentPack> Packs, IReadOnlyList<SegmentMember> Members, IReadOnlySet<int> Gone)
{
    public static SegmentRow From(TableEntity e)
    {
        try
        {
            var (rule, packs, members) = SegmentIndex.Decode(e.GetBinary("Index") ?? []);
            return new SegmentRow(e.PartitionKey, e.RowKey, e.ETag, e.GetString("First") ?? "", e.GetString("Blob") ?? "", rule, packs, members,
                SegmentIndex.DecodeGone(e.GetBinary("Gone")));
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"the segment row {e.RowKey} of mailbox {e.PartitionKey} cannot be read ({ex.Message}); its blob {e.GetString("Blob")} holds the same metadata", ex);
        }
    }

    /// <summary>The key of its last member (its row key without the prefix).</summary>
    public string LastKey => RowKey[StorageNames.SegmentRowPrefix.Length..];

    public int IndexOf(string messageKey)
    {
        for (var i = 0; i < Members.Count; i++)
        {
            if (string.Equals(Members[i].MessageKey, messageKey, StringComparison.Ordinal))
                return i;
        }
        return -1;
    }

    /// <summary>The members not removed, after <paramref name="afterKey"/> when given, in key order.</summary>
    public IEnumerable<int> LiveAfter(string? afterKey) => Enumerable.Range(0, Members.Count)
        .Where(i => !Gone.Contains(i) && (afterKey is null || string.CompareOrdinal(Members[i].MessageKey, afterKey) > 0));

    public string BlobNameOf(int i) => Members[i].Pack >= 0 ? Packs[Members[i].Pack].BlobName : StorageNames.BlobName(Mailbox, Members[i].Sha256);

    public SpoolIndexEntry IndexEntryOf(int i)
    {
        var m = Members[i];
        return new SpoolIndexEntry(m.MessageKey, m.DedupPrefix, m.Pop3Size, m.RawLength, m.Sha256, BlobNameOf(i), m.Pack >= 0 ? m.Offset : null,
            BareCrAsCrlf: SizeRule < IngestFigures.SizeRule && m.Pop3Size > m.RawLength);
    }

    /// <summary>The whole metadata of a member; a record missing from the blob leaves it listed, served and forwarded, and says so.</summary>
    public SpoolMessage MessageOf(int i, SegmentRecords records)
    {
        var m = Members[i];
        var found = records.Get(m.MessageKey);
        SpoolKeys.TryGetTicks(m.MessageKey, out var ticks);
        return new SpoolMessage
        {
            Mailbox = Mailbox,
            MessageKey = m.MessageKey,
            Uidl = m.DedupPrefix,
            BlobName = BlobNameOf(i),
            Pack = m.Pack >= 0 ? new SpoolPackPlace(m.Offset, Packs[m.Pack].FirstKey, Packs[m.Pack].LastKey) : null,
            RawLength = m.RawLength,
            Pop3Size = m.Pop3Size,
            Sha256 = m.Sha256,
            DedupKey = found?.DedupKey ?? m.DedupPrefix,
            SourceAccount = found?.SourceAccount ?? "",
            SourceKey = found?.SourceKey ?? "",
            ReceivedAt = found?.ReceivedAt ?? new DateTimeOffset(ticks, TimeSpan.Zero),
            Summary = found?.Summary is { } summary
                ? summary.AttachmentNames is null ? summary with { AttachmentNames = [] } : summary
                : new MessageSummary { Malformed = true, ParseError = $"the stored summary cannot be read: {records.Problem ?? "its segment holds no record of it"}" },
        };
    }
}

/// <summary>The records of one segment blob by message key, or why there are none.</summary>
internal sealed class SegmentRecords(IReadOnlyDictionary<string, SegmentRecord> records, string? problem)
{
    public string? Problem => problem;

    public SegmentRecord? Get(string key) => records.GetValueOrDefault(key);
}

/// <summary>Segment blobs: written once, read whole, the last few kept decoded (they never change).</summary>
internal sealed class SegmentBlobs(BlobContainerClient container)
{
    private const int Kept = 16;
    private readonly ConcurrentDictionary<string, SegmentRecords> _read = new(StringComparer.Ordinal);

    public async Task WriteAsync(string name, IEnumerable<SegmentRecord> records, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        foreach (var record in records)
            text.Append(JsonSerializer.Serialize(record, LegacyMessageRows.SummaryJson)).Append('\n');
        await container.GetBlobClient(name).UploadAsync(new BinaryData(Encoding.UTF8.GetBytes(text.ToString())), new BlobUploadOptions
        {
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
            HttpHeaders = new BlobHttpHeaders { ContentType = "application/x-ndjson" },
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<SegmentRecords> ReadAsync(string name, CancellationToken cancellationToken)
    {
        if (_read.TryGetValue(name, out var kept))
            return kept;
        SegmentRecords records;
        try
        {
            var content = await container.GetBlobClient(name).DownloadContentAsync(cancellationToken).ConfigureAwait(false);
            var byKey = new Dictionary<string, SegmentRecord>(StringComparer.Ordinal);
            string? problem = null;
            foreach (var line in content.Value.Content.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    if (JsonSerializer.Deserialize<SegmentRecord>(line, LegacyMessageRows.SummaryJson) is { Key: not null } record)
                        byKey[record.Key] = record;
                }
                catch (JsonException ex)
                {
                    problem = $"a line of segment {name} is damaged: {ex.Message}";
                }
            }
            records = new SegmentRecords(byKey, problem);
        }
        catch (RequestFailedException ex) when (ex.Status == 404)
        {
            return new SegmentRecords(new Dictionary<string, SegmentRecord>(), $"its segment blob {name} is missing");
        }
        if (_read.Count >= Kept)
            _read.Clear();
        _read[name] = records;
        return records;
    }

    /// <summary>Deletes a segment's blob (its row is gone, or was never committed).</summary>
    public async Task DeleteAsync(string name, CancellationToken cancellationToken)
    {
        _read.TryRemove(name, out _);
        await container.GetBlobClient(name).DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>
/// The rows of earlier versions in a mailbox (see <see cref="LegacyMessageRows"/>). Whether a mailbox has any is asked once
/// a minute at most: a mailbox without them costs no query.
/// </summary>
internal sealed class LegacyRows(TableClient messages, TimeProvider clock)
{
    private static readonly TimeSpan Recheck = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, (bool Any, DateTimeOffset Checked)> _any = new(StringComparer.Ordinal);

    public async Task<bool> AnyAsync(string mailbox, CancellationToken cancellationToken)
    {
        if (_any.TryGetValue(mailbox, out var known) && clock.GetUtcNow() - known.Checked < Recheck)
            return known.Any;
        var any = await FirstKeyQueryAsync(mailbox, cancellationToken).ConfigureAwait(false) is not null;
        _any[mailbox] = (any, clock.GetUtcNow());
        return any;
    }

    /// <summary>Forgets what is known of a mailbox (its rows were just changed).</summary>
    public void Forget(string mailbox) => _any.TryRemove(mailbox, out _);

    public async Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken) =>
        await AnyAsync(mailbox, cancellationToken).ConfigureAwait(false) ? await FirstKeyQueryAsync(mailbox, cancellationToken).ConfigureAwait(false) : null;

    private async Task<string?> FirstKeyQueryAsync(string mailbox, CancellationToken cancellationToken)
    {
        await foreach (var page in messages.QueryAsync<TableEntity>(Range(mailbox, null, null), maxPerPage: 1,
            select: ["RowKey"], cancellationToken: cancellationToken).AsPages(pageSizeHint: 1).ConfigureAwait(false))
        {
            if (page.Values.Count > 0)
                return page.Values[0].RowKey;
            if (page.ContinuationToken is null)
                break;
        }
        return null;
    }

    public async Task<string?> FindByDedupKeyAsync(string mailbox, string dedupKey, CancellationToken cancellationToken)
    {
        var row = await messages.GetEntityIfExistsAsync<TableEntity>(mailbox, StorageNames.DedupRowKey(dedupKey),
            select: ["MessageKey"], cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? row.Value!.GetString("MessageKey") : null;
    }

    public async Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken)
    {
        if (!await AnyAsync(mailbox, cancellationToken).ConfigureAwait(false))
            return null;
        var row = await messages.GetEntityIfExistsAsync<TableEntity>(mailbox, messageKey, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? LegacyMessageRows.FromEntity(row.Value!) : null;
    }

    public async IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, string? beforeKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!await AnyAsync(mailbox, cancellationToken).ConfigureAwait(false))
            yield break;
        await foreach (var e in messages.QueryAsync<TableEntity>(Range(mailbox, afterKey, beforeKey), maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
            yield return LegacyMessageRows.FromEntity(e);
    }

    public async IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!await AnyAsync(mailbox, cancellationToken).ConfigureAwait(false))
            yield break;
        await foreach (var e in messages.QueryAsync<TableEntity>(Range(mailbox, afterKey, null), maxPerPage: 1000,
            select: LegacyMessageRows.IndexColumns, cancellationToken: cancellationToken).ConfigureAwait(false))
            yield return LegacyMessageRows.IndexEntryOf(e);
    }

    /// <summary>Whether a row of a pack's key range still names its blob.</summary>
    public async Task<bool> AnyNamesAsync(string mailbox, string blobName, string firstKey, string lastKey, CancellationToken cancellationToken)
    {
        if (!await AnyAsync(mailbox, cancellationToken).ConfigureAwait(false))
            return false;
        var filter = TableClient.CreateQueryFilter(
            $"PartitionKey eq {mailbox} and RowKey ge {firstKey} and RowKey le {lastKey} and BlobName eq {blobName}");
        await foreach (var page in messages.QueryAsync<TableEntity>(filter, maxPerPage: 1, select: ["RowKey"], cancellationToken: cancellationToken)
            .AsPages(pageSizeHint: 1).ConfigureAwait(false))
        {
            if (page.Values.Count > 0)
                return true;
            if (page.ContinuationToken is null)
                break;
        }
        return false;
    }

    private static string Range(string mailbox, string? afterKey, string? beforeKey) => TableClient.CreateQueryFilter(
        $"PartitionKey eq {mailbox} and RowKey gt {afterKey ?? StorageNames.MessageRowPrefix} and RowKey lt {beforeKey ?? StorageNames.PrefixEnd(StorageNames.MessageRowPrefix)}");
}
