using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Azure;
using Azure.Data.Tables;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// A mailbox's dedup index in bucket rows (see <see cref="DedupBuckets"/>), read once and then kept with the rows' ETags:
/// every change is made in the transaction that commits or removes its message, conditional on those ETags, so a writer
/// whose copy is stale fails and reads the bucket again.
/// </summary>
internal sealed class DedupIndex(TableClient messages)
{
    /// <summary>
    /// Bucket queries of one mailbox after which all of its buckets are read in one query. Azurite answers every query by
    /// scanning the whole table, so a large pull or retention pass reading thousands of buckets one by one pays that scan
    /// thousands of times, and the pull slows as the spool grows; one query for all of a mailbox's bucket rows (28 bytes a
    /// message) costs one scan. A small pull stays with the few buckets it needs.
    /// </summary>
    internal const int WholeIndexAfter = 64;

    /// <summary>One bucket row as last read or written.</summary>
    internal sealed record Row(string RowKey, ETag ETag, byte[] Entries);

    private readonly ConcurrentDictionary<(string Mailbox, string Bucket), IReadOnlyList<Row>> _rows = new();
    private readonly ConcurrentDictionary<string, int> _bucketQueries = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task>> _wholeReads = new(StringComparer.Ordinal);

    /// <summary>Queries of a single bucket made so far, for all mailboxes.</summary>
    internal int BucketQueries => _bucketQueries.Values.Sum();

    /// <summary>Mailboxes whose buckets were all read in one query.</summary>
    internal int WholeReads => _wholeReads.Count;

    /// <summary>The rows of a bucket in row order.</summary>
    public async Task<IReadOnlyList<Row>> RowsAsync(string mailbox, string bucket, CancellationToken cancellationToken)
    {
        if (_rows.TryGetValue((mailbox, bucket), out var cached))
            return cached;
        if (_bucketQueries.GetValueOrDefault(mailbox) >= WholeIndexAfter)
        {
            await ReadWholeAsync(mailbox, cancellationToken).ConfigureAwait(false);
            if (_rows.TryGetValue((mailbox, bucket), out cached))
                return cached;
        }
        _bucketQueries.AddOrUpdate(mailbox, 1, (_, n) => n + 1);
        var start = DedupBuckets.BucketStart(bucket);
        var rows = new List<Row>();
        await foreach (var (_, row) in QueryAsync(mailbox, start, cancellationToken).ConfigureAwait(false))
            rows.Add(row);
        _rows[(mailbox, bucket)] = rows;
        return rows;
    }

    /// <summary>
    /// Reads every bucket row of the mailbox once per process (a failed read is tried again by the next caller). A bucket
    /// already kept is left as it is: a commit of this process may have changed it since the query read it. A bucket the
    /// query read before another writer changed it is stale like any kept bucket: its ETag refuses the next commit, which
    /// reads it again.
    /// </summary>
    private async Task ReadWholeAsync(string mailbox, CancellationToken cancellationToken)
    {
        var read = _wholeReads.GetOrAdd(mailbox, m => new Lazy<Task>(() => ReadWholeCoreAsync(m, cancellationToken)));
        try
        {
            await read.Value.ConfigureAwait(false);
        }
        catch
        {
            _wholeReads.TryRemove(new KeyValuePair<string, Lazy<Task>>(mailbox, read));
            throw;
        }
    }

    private async Task ReadWholeCoreAsync(string mailbox, CancellationToken cancellationToken)
    {
        var buckets = new Dictionary<string, List<Row>>(StringComparer.Ordinal);
        await foreach (var (bucket, row) in QueryAsync(mailbox, DedupBuckets.RowPrefix, cancellationToken).ConfigureAwait(false))
        {
            if (!buckets.TryGetValue(bucket, out var rows))
                buckets[bucket] = rows = [];
            rows.Add(row);
        }
        foreach (var bucket in DedupBuckets.All)
            _rows.TryAdd((mailbox, bucket), buckets.GetValueOrDefault(bucket) ?? []);
        foreach (var (bucket, rows) in buckets)
            _rows.TryAdd((mailbox, bucket), rows);
    }

    /// <summary>The bucket rows whose keys start with <paramref name="prefix"/>, in row order, each with its bucket.</summary>
    private async IAsyncEnumerable<(string Bucket, Row Row)> QueryAsync(string mailbox, string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {mailbox} and RowKey ge {prefix} and RowKey lt {StorageNames.PrefixEnd(prefix)}");
        await foreach (var e in messages.QueryAsync<TableEntity>(filter, maxPerPage: 1000, select: ["RowKey", "E"], cancellationToken: cancellationToken).ConfigureAwait(false))
            yield return (DedupBuckets.BucketOfRow(e.RowKey), new Row(e.RowKey, e.ETag, e.GetBinary("E") ?? []));
    }

    /// <summary>The key of the message holding <paramref name="dedupKey"/>, or null.</summary>
    public async Task<string?> FindAsync(string mailbox, string dedupKey, CancellationToken cancellationToken)
    {
        var key = DedupBuckets.KeyOf(dedupKey);
        foreach (var row in await RowsAsync(mailbox, DedupBuckets.BucketOf(dedupKey), cancellationToken).ConfigureAwait(false))
        {
            if (DedupBuckets.Find(row.Entries, key) is { } messageKey)
                return messageKey;
        }
        return null;
    }

    public void Forget(string mailbox, string bucket) => _rows.TryRemove((mailbox, bucket), out _);

    /// <summary>
    /// The actions that add entries to one bucket: the last row filled up, then new rows. <paramref name="written"/> gets
    /// the rows as they will be once the transaction succeeds (ETags still to be taken from its answer).
    /// </summary>
    public static List<TableTransactionAction> AddActions(string mailbox, string bucket, IReadOnlyList<Row> rows, IReadOnlyList<byte[]> entries, List<Row> written)
    {
        var actions = new List<TableTransactionAction>();
        written.AddRange(rows);
        var pending = new Queue<byte[]>(entries);
        if (rows.Count > 0 && rows[^1].Entries.Length < DedupBuckets.RowCapacity * DedupBuckets.EntryBytes)
        {
            var last = rows[^1];
            var filled = Fill(last.Entries, pending);
            written[^1] = last with { Entries = filled };
            actions.Add(new TableTransactionAction(TableTransactionActionType.UpdateReplace, Entity(mailbox, last.RowKey, filled), last.ETag));
        }
        var n = rows.Count > 0 ? DedupBuckets.RowNumber(rows[^1].RowKey) : -1;
        while (pending.Count > 0)
        {
            var row = new Row(DedupBuckets.RowKey(bucket, ++n), ETag.All, Fill([], pending));
            written.Add(row);
            actions.Add(new TableTransactionAction(TableTransactionActionType.Add, Entity(mailbox, row.RowKey, row.Entries)));
        }
        return actions;
    }

    /// <summary>
    /// The action that takes the entry of <paramref name="dedupKey"/> naming <paramref name="messageKey"/> out of its bucket
    /// (deleting the row it empties), or null when no entry names it. <paramref name="written"/> gets the rows after it.
    /// </summary>
    public static TableTransactionAction? RemoveAction(string mailbox, IReadOnlyList<Row> rows, string dedupKey, string messageKey, List<Row> written)
    {
        var key = DedupBuckets.KeyOf(dedupKey);
        written.AddRange(rows);
        for (var r = 0; r < rows.Count; r++)
        {
            var at = DedupBuckets.IndexOf(rows[r].Entries, key);
            if (at < 0)
                continue;
            if (DedupBuckets.Find(rows[r].Entries, key) != messageKey)
                return null; // the entry belongs to another message (this one was a duplicate): it stays
            var left = new byte[rows[r].Entries.Length - DedupBuckets.EntryBytes];
            rows[r].Entries.AsSpan(0, at).CopyTo(left);
            rows[r].Entries.AsSpan(at + DedupBuckets.EntryBytes).CopyTo(left.AsSpan(at));
            if (left.Length == 0)
            {
                written.RemoveAt(r);
                return new TableTransactionAction(TableTransactionActionType.Delete, new TableEntity(mailbox, rows[r].RowKey), rows[r].ETag);
            }
            written[r] = rows[r] with { Entries = left };
            return new TableTransactionAction(TableTransactionActionType.UpdateReplace, Entity(mailbox, rows[r].RowKey, left), rows[r].ETag);
        }
        return null;
    }

    /// <summary>
    /// Keeps the rows of a bucket as a transaction that succeeded left them, each with the ETag its answer carries (a row
    /// whose answer has none is read again next time, as is the whole bucket then).
    /// </summary>
    public void Keep(string mailbox, string bucket, IReadOnlyList<Row> rows, IReadOnlyDictionary<string, ETag?> etags)
    {
        var kept = new List<Row>(rows.Count);
        foreach (var row in rows)
        {
            if (!etags.TryGetValue(row.RowKey, out var etag))
            {
                kept.Add(row); // untouched
                continue;
            }
            if (etag is not { } value || value == default)
            {
                Forget(mailbox, bucket);
                return;
            }
            kept.Add(row with { ETag = value });
        }
        _rows[(mailbox, bucket)] = kept;
    }

    private static byte[] Fill(byte[] entries, Queue<byte[]> pending)
    {
        var room = DedupBuckets.RowCapacity - entries.Length / DedupBuckets.EntryBytes;
        var take = Math.Min(room, pending.Count);
        var filled = new byte[entries.Length + take * DedupBuckets.EntryBytes];
        entries.CopyTo(filled, 0);
        for (var i = 0; i < take; i++)
            pending.Dequeue().CopyTo(filled, entries.Length + i * DedupBuckets.EntryBytes);
        return filled;
    }

    private static TableEntity Entity(string mailbox, string rowKey, byte[] entries) => new(mailbox, rowKey) { ["E"] = entries };
}
