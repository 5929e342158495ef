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

    public async Task<IReadOnlyDictionary<string, SeenEntry>> LoadSeenAsync(string account, string scope, string validity, CancellationToken cancellationToken)
    {
        var prefix = StorageNames.SeenPrefix(scope, validity);
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {account} and RowKey ge {prefix} and RowKey lt {StorageNames.PrefixEnd(prefix)}");
        var result = new Dictionary<string, SeenEntry>(StringComparer.Ordinal);
        await foreach (var e in Table.QueryAsync<TableEntity>(filter, maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            var key = StorageNames.Unescape(e.RowKey[prefix.Length..]);
            result[key] = new SeenEntry(key, e.GetDateTimeOffset("FirstSeen") ?? default, e.GetBoolean("Stored") ?? false,
                e.GetString("MessageKey"), e.GetInt64("Size") ?? 0);
        }
        return result;
    }

    public async Task MarkSeenAsync(string account, string scope, string validity, IReadOnlyCollection<SeenEntry> entries, CancellationToken cancellationToken)
    {
        var prefix = StorageNames.SeenPrefix(scope, validity);
        // A table transaction holds at most 100 entities of one partition.
        foreach (var chunk in entries.Chunk(100))
        {
            var actions = chunk.Select(s => new TableTransactionAction(TableTransactionActionType.UpsertReplace,
                new TableEntity(account, prefix + StorageNames.Escape(s.Key))
                {
                    ["FirstSeen"] = s.FirstSeen,
                    ["Stored"] = s.Stored,
                    ["MessageKey"] = s.MessageKey,
                    ["Size"] = s.Size,
                }));
            await Table.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task ForgetSeenAsync(string account, string scope, string validity, IReadOnlyCollection<string> keys, CancellationToken cancellationToken)
    {
        var prefix = StorageNames.SeenPrefix(scope, validity);
        foreach (var chunk in keys.Chunk(100))
        {
            var actions = chunk.Select(k => new TableTransactionAction(TableTransactionActionType.Delete,
                new TableEntity(account, prefix + StorageNames.Escape(k)), ETag.All));
            try
            {
                await Table.SubmitTransactionAsync(actions, cancellationToken).ConfigureAwait(false);
            }
            catch (TableTransactionFailedException ex) when (ex.Status == 404)
            {
                // One of them was already forgotten (an earlier run crashed half-way): forget the rest one by one.
                foreach (var k in chunk)
                    await Table.DeleteEntityAsync(account, prefix + StorageNames.Escape(k), ETag.All, cancellationToken).ConfigureAwait(false);
            }
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
        var prefix = StorageNames.FailurePrefix;
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {account} and RowKey ge {prefix} and RowKey lt {StorageNames.PrefixEnd(prefix)}");
        var result = new List<MessageFailure>();
        await foreach (var e in Table.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            result.Add(new MessageFailure(e.GetString("Scope") ?? "", e.GetString("Key") ?? "", e.GetInt32("Attempts") ?? 0,
                e.GetDateTimeOffset("LastAttempt") ?? default, e.GetString("Error") ?? ""));
        }
        return result;
    }
}
