using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace CloudSpool.Storage.Azure;

/// <summary>Thread-safe clients for the storage account, shared by every adapter.</summary>
public sealed class AzureStorage
{
    public AzureStorage(string connectionString, string namePrefix = "")
    {
        Names = new StorageNames(namePrefix);
        var blobs = new BlobServiceClient(connectionString);
        var tables = new TableServiceClient(connectionString);
        Messages = tables.GetTableClient(Names.MessagesTable);
        Ledger = tables.GetTableClient(Names.LedgerTable);
        Control = tables.GetTableClient(Names.ControlTable);
        Runs = tables.GetTableClient(Names.RunsTable);
        Views = tables.GetTableClient(Names.ViewsTable);
        Forwards = tables.GetTableClient(Names.ForwardsTable);
        Spool = blobs.GetBlobContainerClient(Names.SpoolContainer);
        Leases = blobs.GetBlobContainerClient(Names.LeaseContainer);
        BlobServiceUri = blobs.Uri;
        TableServiceUri = tables.Uri;
    }

    /// <summary>The blob service's address (with a SAS credential, its token in the query).</summary>
    public Uri BlobServiceUri { get; }

    /// <summary>The table service's address.</summary>
    public Uri TableServiceUri { get; }

    public StorageNames Names { get; }
    public TableClient Messages { get; }
    public TableClient Ledger { get; }
    public TableClient Control { get; }
    public TableClient Runs { get; }
    public TableClient Views { get; }
    public TableClient Forwards { get; }
    public BlobContainerClient Spool { get; }
    public BlobContainerClient Leases { get; }

    /// <summary>Every table of the spool, in the same order for every account.</summary>
    public IReadOnlyList<TableClient> Tables => [Messages, Ledger, Control, Runs, Views, Forwards];

    /// <summary>Creates the tables and containers that do not exist yet (idempotent).</summary>
    public async Task EnsureCreatedAsync(CancellationToken cancellationToken)
    {
        foreach (var table in Tables)
            await table.CreateIfNotExistsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var container in new[] { Spool, Leases })
            await container.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>Predicates on storage errors, so callers say what they mean.</summary>
public static class RequestFailedExceptionExtensions
{
    public static bool IsConflict(this RequestFailedException ex) => ex.Status == 409;
    public static bool IsNotFound(this RequestFailedException ex) => ex.Status == 404;
    public static bool IsPreconditionFailed(this RequestFailedException ex) => ex.Status == 412;
}
