using System.Globalization;
using System.IO.Compression;
using System.Text;
using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Pull;

namespace CloudSpool.Storage.Azure;

/// <summary>The per-account seen ledger in one Table partition per account (see <see cref="StorageNames"/>).</summary>
public sealed class AzurePullLedger(AzureStorage storage) : IPullLedger
{
    private TableClient Table => storage.Ledger;

    public async Task<string?> GetScopeValidityAsync(string account, string scope, CancellationToken cancellationToken)
    {
        var row = await Table.GetEntityIfExistsAsync<TableEntity>(account, StorageNames.ScopeValidityRowKey(scope), cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? row.Value!.GetString("Validity") : null;
    }

    public Task SetScopeValidityAsync(string account, string scope, string validity, CancellationToken cancellationToken) =>
        Table.UpsertEntityAsync(new TableEntity(account, StorageNames.ScopeValidityRowKey(scope)) { ["Validity"] = validity, ["Scope"] = scope },
            TableUpdateMode.Replace, cancellationToken);

    /// <summary>
    /// Most entries in one seen chunk, and most bytes of its text: compressed, even text that does not compress at all
    /// stays within what a binary property holds (64 KiB).
    /// </summary>
    private const int ChunkEntries = 400;
    private const int ChunkBytes = 60_000;

    public async Task<IReadOnlyDictionary<string, SeenEntry>> LoadSeenAsync(string account, string scope, string validity, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, SeenEntry>(StringComparer.Ordinal);
        await foreach (var (entry, _) in ReadSeenAsync(account, scope, validity, cancellationToken).ConfigureAwait(false))
            result[entry.Key] = entry;
        return result;
    }

    /// <summary>
    /// Every seen entry of the scope with the row that holds it: first the rows of one message each (written by earlier
    /// versions), then the chunks in the order they were written, so a later entry for the same key comes later.
    /// </summary>
    private async IAsyncEnumerable<(SeenEntry Entry, TableEntity Row)> ReadSeenAsync(string account, string scope, string validity,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var single = StorageNames.SeenPrefix(scope, validity);
        await foreach (var e in Table.QueryAsync<TableEntity>(PrefixFilter(account, single), maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = StorageNames.Unescape(e.RowKey[single.Length..]);
            yield return (new SeenEntry(key, e.GetDateTimeOffset("FirstSeen") ?? default, e.GetBoolean("Stored") ?? false, e.GetString("MessageKey"), e.GetInt64("Size") ?? 0), e);
        }
        await foreach (var e in Table.QueryAsync<TableEntity>(PrefixFilter(account, StorageNames.SeenChunkPrefix(scope, validity)), maxPerPage: 1000,
                           cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            foreach (var entry in ParseChunk(ChunkText(e)))
                yield return (entry, e);
        }
    }

    private static string PrefixFilter(string account, string prefix) =>
        TableClient.CreateQueryFilter($"PartitionKey eq {account} and RowKey ge {prefix} and RowKey lt {StorageNames.PrefixEnd(prefix)}");

    /// <summary>
    /// Records entries in chunk rows of up to 400 entries each: one row per batch of messages instead of one per message,
    /// so a run writes, and every later run reads, a few hundredths of the rows. A chunk is its text compressed with
    /// Brotli in property <c>EntriesZ</c> (about a quarter of its length: on the embedded store the ledger of a mailbox
    /// kept upstream is as large as the mailbox, and every byte of it is saved every few seconds); chunks written before
    /// compression hold their text as is in <c>Entries</c>, and are read the same. The text is a line per entry:
    /// escaped key, first-seen ticks (UTC), stored (1/0), message key, size, separated by tabs. An unknown size
    /// (<see cref="SeenEntry.UnknownSize"/>, an entry imported from another tool) is written '?': a version that does not
    /// know it skips the entry (it fetches the message again, and the dedup key recognises it), never reads it as a size.
    /// </summary>
    public async Task MarkSeenAsync(string account, string scope, string validity, IReadOnlyCollection<SeenEntry> entries, CancellationToken cancellationToken)
    {
        var rows = new List<TableEntity>();
        var text = new StringBuilder();
        var count = 0;
        var bytes = 0;
        void Close()
        {
            if (count == 0)
                return;
            rows.Add(ChunkRow(account, scope, validity, text.ToString()));
            text.Clear();
            count = 0;
            bytes = 0;
        }
        foreach (var entry in entries)
        {
            var line = FormatEntry(entry);
            var lineBytes = Encoding.UTF8.GetByteCount(line);
            if (count == ChunkEntries || (count > 0 && bytes + lineBytes > ChunkBytes))
                Close();
            text.Append(line);
            bytes += lineBytes;
            count++;
        }
        Close();
        // A transaction holds at most 100 entities and 4 MiB: 20 chunks of at most 60 KB each. Each chunk has a new key;
        // an upsert keeps a retried transaction (its first answer lost) from failing on its own rows.
        foreach (var batch in rows.Chunk(20))
            await Table.SubmitTransactionAsync(batch.Select(r => new TableTransactionAction(TableTransactionActionType.UpsertReplace, r)), cancellationToken).ConfigureAwait(false);
    }

    private static TableEntity ChunkRow(string account, string scope, string validity, string entries) =>
        new(account, string.Create(CultureInfo.InvariantCulture, $"{StorageNames.SeenChunkPrefix(scope, validity)}{DateTimeOffset.UtcNow.UtcTicks:D19}-{Guid.NewGuid():N}"))
        {
            ["EntriesZ"] = Compress(entries),
        };

    internal static byte[] Compress(string text)
    {
        using var buffer = new MemoryStream();
        using (var brotli = new BrotliStream(buffer, CompressionLevel.Optimal, leaveOpen: true))
            brotli.Write(Encoding.UTF8.GetBytes(text));
        return buffer.ToArray();
    }

    /// <summary>
    /// A chunk's text: compressed, or as is in chunks written before compression. A chunk that cannot be read is no
    /// entries: its messages are fetched again, and the dedup key recognises them.
    /// </summary>
    internal static string ChunkText(TableEntity row)
    {
        if (row.GetBinary("EntriesZ") is not { } compressed)
            return row.GetString("Entries") ?? "";
        try
        {
            using var brotli = new BrotliStream(new MemoryStream(compressed, writable: false), CompressionMode.Decompress);
            using var reader = new StreamReader(brotli, Encoding.UTF8);
            return reader.ReadToEnd();
        }
        catch (InvalidDataException)
        {
            return "";
        }
    }

    private const string UnknownSizeText = "?";

    internal static string FormatEntry(SeenEntry e) => string.Create(CultureInfo.InvariantCulture,
        $"{StorageNames.Escape(e.Key)}\t{e.FirstSeen.UtcTicks}\t{(e.Stored ? 1 : 0)}\t{e.MessageKey}\t{(e.Size == SeenEntry.UnknownSize ? UnknownSizeText : e.Size)}\n");

    internal static IEnumerable<SeenEntry> ParseChunk(string text)
    {
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var f = line.Split('\t');
            long size = SeenEntry.UnknownSize;
            if (f.Length != 5 || !long.TryParse(f[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks)
                || (f[4] != UnknownSizeText && !long.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out size)))
                continue; // not ours to understand: the message is fetched again, and the dedup key recognises it
            yield return new SeenEntry(StorageNames.Unescape(f[0]), new DateTimeOffset(ticks, TimeSpan.Zero), f[2] == "1", f[3].Length == 0 ? null : f[3], size);
        }
    }

    public async Task ForgetSeenAsync(string account, string scope, string validity, IReadOnlyCollection<string> keys, CancellationToken cancellationToken)
    {
        var forget = keys.ToHashSet(StringComparer.Ordinal);
        if (forget.Count == 0)
            return;
        var single = StorageNames.SeenPrefix(scope, validity);
        var singles = new List<TableEntity>();
        var chunks = new Dictionary<string, (TableEntity Row, List<SeenEntry> Keep, bool Changed)>(StringComparer.Ordinal);
        await foreach (var (entry, row) in ReadSeenAsync(account, scope, validity, cancellationToken).ConfigureAwait(false))
        {
            if (row.RowKey.StartsWith(single, StringComparison.Ordinal))
            {
                if (forget.Contains(entry.Key))
                    singles.Add(row);
                continue;
            }
            (TableEntity Row, List<SeenEntry> Keep, bool Changed) chunk = chunks.TryGetValue(row.RowKey, out var c) ? c : (row, [], false);
            if (forget.Contains(entry.Key))
                chunk.Changed = true;
            else
                chunk.Keep.Add(entry);
            chunks[row.RowKey] = chunk;
        }

        foreach (var batch in singles.Chunk(100))
        {
            try
            {
                await Table.SubmitTransactionAsync(batch.Select(r => new TableTransactionAction(TableTransactionActionType.Delete, r, ETag.All)), cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 404)
            {
                // One of them is gone already (a retried transaction whose first answer was lost): the rest one by one.
                foreach (var row in batch)
                    await Table.DeleteEntityAsync(account, row.RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
            }
        }
        foreach (var (row, keep, changed) in chunks.Values.Where(c => c.Changed))
        {
            // Only this account's puller (it holds the lease) writes its ledger: no other change can come in between.
            if (keep.Count == 0)
                await Table.DeleteEntityAsync(account, row.RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
            else
                await Table.UpdateEntityAsync(new TableEntity(account, row.RowKey) { ["EntriesZ"] = Compress(string.Concat(keep.Select(FormatEntry))) }, ETag.All,
                    TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task RecordMessageFailureAsync(string account, string scope, string key, string error, CancellationToken cancellationToken)
    {
        var rowKey = StorageNames.FailureRowKey(scope, key);
        var existing = await Table.GetEntityIfExistsAsync<TableEntity>(account, rowKey, cancellationToken: cancellationToken).ConfigureAwait(false);
        var attempts = existing.HasValue ? (existing.Value!.GetInt32("Attempts") ?? 0) : 0;
        await Table.UpsertEntityAsync(new TableEntity(account, rowKey)
        {
            ["Scope"] = scope,
            ["Key"] = key,
            ["Attempts"] = attempts + 1,
            ["LastAttempt"] = DateTimeOffset.UtcNow,
            ["Error"] = error.Length > 2000 ? error[..2000] : error,
        }, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
    }

    public Task ClearMessageFailureAsync(string account, string scope, string key, CancellationToken cancellationToken) =>
        // A missing row (nothing had failed for this message: the usual case) is a 404 response, not an error.
        Table.DeleteEntityAsync(account, StorageNames.FailureRowKey(scope, key), ETag.All, cancellationToken);

    public async Task<IReadOnlyList<MessageFailure>> ListMessageFailuresAsync(string account, CancellationToken cancellationToken)
    {
        var result = new List<MessageFailure>();
        await foreach (var e in Table.QueryAsync<TableEntity>(PrefixFilter(account, StorageNames.FailurePrefix), cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            result.Add(new MessageFailure(e.GetString("Scope") ?? "", e.GetString("Key") ?? "", e.GetInt32("Attempts") ?? 0,
                e.GetDateTimeOffset("LastAttempt") ?? default, e.GetString("Error") ?? ""));
        }
        return result;
    }
}
