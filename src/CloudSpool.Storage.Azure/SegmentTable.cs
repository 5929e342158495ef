using System.Globalization;
using System.Runtime.CompilerServices;
using Azure.Data.Tables;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Queries of a mailbox's segment rows. A row's key is its last message's, and no segment spans more than
/// <see cref="MaxSpan"/> of commit time from its first message to its last, so the rows that can hold a key lie in one short
/// key range, even where the segments of writers committing at the same time overlap.
/// </summary>
internal sealed class SegmentTable(TableClient messages)
{
    /// <summary>The longest a segment spans from its first message's commit ticks to its last's.</summary>
    public static readonly TimeSpan MaxSpan = TimeSpan.FromHours(6);

    private static readonly string End = StorageNames.PrefixEnd(StorageNames.SegmentRowPrefix);

    /// <summary>The smallest row key after every segment whose last message is at most <see cref="MaxSpan"/> after <paramref name="key"/>.</summary>
    private static string SpanEnd(string key)
    {
        if (!SpoolKeys.TryGetTicks(key, out var ticks))
            return End;
        return string.Create(CultureInfo.InvariantCulture, $"{StorageNames.SegmentRowPrefix}m:{ticks + MaxSpan.Ticks + 1:D19}");
    }

    /// <summary>Whether two message keys lie within <see cref="MaxSpan"/> of each other.</summary>
    public static bool WithinSpan(string first, string last) =>
        SpoolKeys.TryGetTicks(first, out var a) && SpoolKeys.TryGetTicks(last, out var b) && b - a <= MaxSpan.Ticks;

    /// <summary>The segment rows whose last message comes after <paramref name="afterKey"/>, by that last key.</summary>
    public IAsyncEnumerable<SegmentRow> RowsAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) =>
        QueryAsync($"PartitionKey eq {mailbox} and RowKey gt {(afterKey is null ? StorageNames.SegmentRowPrefix : StorageNames.SegmentRowKey(afterKey))} and RowKey lt {End}", cancellationToken);

    /// <summary>The segment rows that can hold a message with a key from <paramref name="first"/> to <paramref name="last"/>.</summary>
    public IAsyncEnumerable<SegmentRow> RowsHoldingAsync(string mailbox, string first, string last, CancellationToken cancellationToken) =>
        QueryAsync($"PartitionKey eq {mailbox} and RowKey ge {StorageNames.SegmentRowKey(first)} and RowKey lt {SpanEnd(last)}", cancellationToken);

    /// <summary>
    /// Rows asked for in one request. A row holds up to 49 messages (about 4 KB of JSON), and the SDK buffers each page
    /// whole, growing its buffer by doubling on the large object heap, which only a full collection frees: pages of 1,000
    /// rows (4-5 MB) leave some 50 MB of such buffers at the peak of an edge listing 100,000 messages. Pages of 100 keep
    /// each buffer under 1 MB at no measurable cost in listing time; fewer rows cost time and save no more memory.
    /// </summary>
    internal const int PageRows = 100;

    private async IAsyncEnumerable<SegmentRow> QueryAsync(FormattableString filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var e in messages.QueryAsync<TableEntity>(TableClient.CreateQueryFilter(filter), maxPerPage: PageRows, cancellationToken: cancellationToken).ConfigureAwait(false))
            yield return SegmentRow.From(e);
    }

    /// <summary>The segment holding a live message with this key, and its place there; null when there is none.</summary>
    public async Task<(SegmentRow Segment, int Index)?> FindAsync(string mailbox, string messageKey, CancellationToken cancellationToken)
    {
        await foreach (var segment in RowsHoldingAsync(mailbox, messageKey, messageKey, cancellationToken).ConfigureAwait(false))
        {
            var index = segment.IndexOf(messageKey);
            if (index >= 0)
                return segment.Gone.Contains(index) ? null : (segment, index);
        }
        return null;
    }

    /// <summary>
    /// The live messages after <paramref name="afterKey"/> in key order. Rows come by their last key; a message is let out
    /// once the rows read reach <see cref="MaxSpan"/> past it, as no later row can hold a smaller key.
    /// </summary>
    public async IAsyncEnumerable<(SegmentRow Segment, int Index)> LiveAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var waiting = new PriorityQueue<(SegmentRow, int), string>(StringComparer.Ordinal);
        await foreach (var segment in RowsAsync(mailbox, afterKey, cancellationToken).ConfigureAwait(false))
        {
            if (SpoolKeys.TryGetTicks(segment.LastKey, out var last))
            {
                var safe = string.Create(CultureInfo.InvariantCulture, $"m:{Math.Max(0, last - MaxSpan.Ticks):D19}");
                while (waiting.TryPeek(out var item, out var key) && string.CompareOrdinal(key, safe) < 0)
                {
                    waiting.Dequeue();
                    yield return item;
                }
            }
            foreach (var i in segment.LiveAfter(afterKey))
                waiting.Enqueue((segment, i), segment.Members[i].MessageKey);
        }
        while (waiting.TryDequeue(out var item, out _))
            yield return item;
    }

    /// <summary>The smallest live message key, or null.</summary>
    public async Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken)
    {
        string? first = null;
        string? stop = null;
        await foreach (var segment in RowsAsync(mailbox, null, cancellationToken).ConfigureAwait(false))
        {
            // A row whose last key is a span past the first row's cannot hold anything smaller.
            stop ??= SpanEnd(segment.LastKey);
            if (string.CompareOrdinal(segment.RowKey, stop) >= 0)
                break;
            foreach (var i in segment.LiveAfter(null))
            {
                var key = segment.Members[i].MessageKey;
                if (first is null || string.CompareOrdinal(key, first) < 0)
                    first = key;
            }
        }
        return first;
    }

    /// <summary>Whether a live message of a pack's key range lies in the pack.</summary>
    public async Task<bool> AnyNamesAsync(string mailbox, string blobName, string firstKey, string lastKey, CancellationToken cancellationToken)
    {
        await foreach (var segment in RowsHoldingAsync(mailbox, firstKey, lastKey, cancellationToken).ConfigureAwait(false))
        {
            if (segment.LiveAfter(null).Any(i => segment.BlobNameOf(i) == blobName))
                return true;
        }
        return false;
    }
}
