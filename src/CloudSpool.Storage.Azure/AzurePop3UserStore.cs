using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Edge;

namespace CloudSpool.Storage.Azure;

/// <summary>POP3 users in the control table (PK <c>pop3-user</c>, RK user name): every edge and the CLI see the same list.</summary>
public sealed class AzurePop3UserStore(AzureStorage storage) : IPop3UserStore
{
    public async Task<Pop3User?> GetAsync(string name, CancellationToken cancellationToken)
    {
        var row = await storage.Control.GetEntityIfExistsAsync<TableEntity>(StorageNames.Pop3UserPartition, name, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? FromEntity(row.Value!) : null;
    }

    public async Task<IReadOnlyList<Pop3User>> ListAsync(CancellationToken cancellationToken)
    {
        var result = new List<Pop3User>();
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {StorageNames.Pop3UserPartition}");
        await foreach (var e in storage.Control.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
            result.Add(FromEntity(e));
        return result;
    }

    public async Task<bool> AddAsync(Pop3User user, CancellationToken cancellationToken) =>
        await storage.Control.TryAddEntityAsync(ToEntity(user), cancellationToken).ConfigureAwait(false);

    public async Task<bool> UpdateAsync(Pop3User user, CancellationToken cancellationToken)
    {
        try
        {
            // ETag.All: replace only an existing row (an update of a missing row is a 404, never an insert).
            await storage.Control.UpdateEntityAsync(ToEntity(user), ETag.All, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException ex) when (ex.IsNotFound())
        {
            return false;
        }
    }

    public async Task<bool> RemoveAsync(string name, CancellationToken cancellationToken) =>
        await storage.Control.TryDeleteEntityAsync(StorageNames.Pop3UserPartition, name, cancellationToken).ConfigureAwait(false);

    private static TableEntity ToEntity(Pop3User user) => new(StorageNames.Pop3UserPartition, user.Name)
    {
        ["Mailbox"] = user.Mailbox,
        ["PasswordHash"] = user.PasswordHash,
    };

    private static Pop3User FromEntity(TableEntity e) =>
        new(e.RowKey, e.GetString("Mailbox") ?? e.RowKey, e.GetString("PasswordHash") ?? "");
}
