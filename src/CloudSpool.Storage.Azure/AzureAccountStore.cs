using System.Text.Json;
using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Accounts;

namespace CloudSpool.Storage.Azure;

/// <summary>Account definitions as JSON in the control table: every worker and the CLI see the same list.</summary>
public sealed class AzureAccountStore(AzureStorage storage) : IAccountStore
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public async Task<IReadOnlyList<AccountDefinition>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new List<AccountDefinition>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StorageNames.AccountPartition}");
        await foreach (var e in storage.Control.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
            result.Add(Deserialize(e));
        return result;
    }

    public async Task<AccountDefinition?> GetAsync(string name, CancellationToken cancellationToken)
    {
        var row = await storage.Control.GetEntityIfExistsAsync<TableEntity>(StorageNames.AccountPartition, name, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? Deserialize(row.Value!) : null;
    }

    public async Task<bool> AddAsync(AccountDefinition account, CancellationToken cancellationToken) =>
        await storage.Control.TryAddEntityAsync(ToEntity(account), cancellationToken).ConfigureAwait(false);

    public Task UpdateAsync(AccountDefinition account, CancellationToken cancellationToken) =>
        storage.Control.UpdateEntityAsync(ToEntity(account), ETag.All, TableUpdateMode.Replace, cancellationToken);

    public async Task<bool> RemoveAsync(string name, CancellationToken cancellationToken) =>
        await storage.Control.TryDeleteEntityAsync(StorageNames.AccountPartition, name, cancellationToken).ConfigureAwait(false);

    private static TableEntity ToEntity(AccountDefinition account) =>
        new(StorageNames.AccountPartition, account.Name) { ["Definition"] = JsonSerializer.Serialize(account, Json) };

    private static AccountDefinition Deserialize(TableEntity e) =>
        JsonSerializer.Deserialize<AccountDefinition>(e.GetString("Definition"), Json)
        ?? throw new InvalidDataException($"account row {e.RowKey} holds no definition");
}
