using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace CloudSpool.Storage.Azure;

/// <summary>Thread-safe clients for the storage account, shared by every adapter.</summary>
public sealed class AzureStorage
{
    /// <summary>Connection-string settings naming one table's own SAS: <c>TableSas.{table}=token</c>.</summary>
    public const string TableSasPrefix = "TableSas.";

    /// <summary>Connection-string settings naming one container's own SAS: <c>BlobSas.{container}=token</c>.</summary>
    public const string BlobSasPrefix = "BlobSas.";

    /// <summary>
    /// Connection-string settings naming the SAS one table's entity-group transactions are signed with, when it is not
    /// the table's own (Azurite refuses a batch signed with a table SAS): <c>TableBatchSas.{table}=token</c>.
    /// </summary>
    public const string TableBatchSasPrefix = "TableBatchSas.";

    /// <summary>The SAS that may write the away switch's row of the control table and no other row.</summary>
    public const string SwitchSasSetting = "SwitchSas";

    public AzureStorage(string connectionString, string namePrefix = "")
    {
        Names = new StorageNames(namePrefix);
        var settings = ParseSettings(connectionString);
        var perServiceSas = settings.Keys.Any(IsServiceSasSetting);
        Func<string, TableClient> table;
        Func<string, BlobContainerClient> container;
        if (!perServiceSas)
        {
            var blobs = new BlobServiceClient(connectionString);
            var tables = new TableServiceClient(connectionString);
            table = tables.GetTableClient;
            container = blobs.GetBlobContainerClient;
            BlobServiceUri = blobs.Uri;
            TableServiceUri = tables.Uri;
        }
        else
        {
            // One SAS per table and container (what `edge-credentials` issues): each client signs with its own token, so
            // a write is confined to the tables and containers whose token allows it.
            BlobServiceUri = new Uri(settings["BlobEndpoint"].TrimEnd('/'));
            TableServiceUri = new Uri(settings["TableEndpoint"].TrimEnd('/'));
            table = name => SasTable(name, TableSasPrefix + name);
            container = name => new BlobServiceClient(BlobServiceUri, new AzureSasCredential(Token(BlobSasPrefix + name))).GetBlobContainerClient(name);
        }
        string Token(string setting) => settings.GetValueOrDefault(setting) is { Length: > 0 } sas
            ? sas.TrimStart('?')
            : throw new ArgumentException($"the storage connection string carries a SAS per table and container, but none as '{setting}=': issue a whole new one (`cloudspool edge-credentials`)");
        TableClient SasTable(string name, string setting) =>
            new TableServiceClient(TableServiceUri, new AzureSasCredential(Token(setting))).GetTableClient(name);

        var clients = Names.Tables.ToDictionary(name => name, table);
        Tables = [.. Names.Tables.Select(name => clients[name])];
        Messages = clients[Names.MessagesTable];
        Ledger = clients[Names.LedgerTable];
        Control = clients[Names.ControlTable];
        Runs = clients[Names.RunsTable];
        Views = clients[Names.ViewsTable];
        Forwards = clients[Names.ForwardsTable];
        ForwardSwitch = perServiceSas ? SasTable(Names.ControlTable, SwitchSasSetting) : Control;
        ViewBatches = perServiceSas && settings.ContainsKey(TableBatchSasPrefix + Names.ViewsTable)
            ? SasTable(Names.ViewsTable, TableBatchSasPrefix + Names.ViewsTable)
            : Views;
        Spool = container(Names.SpoolContainer);
        Leases = container(Names.LeaseContainer);
    }

    /// <summary>The settings a connection string with a SAS per table and container must carry for these names, and does not.</summary>
    public static IEnumerable<string> MissingSasSettings(string? connectionString, StorageNames names)
    {
        var settings = ParseSettings(connectionString);
        string[] required =
        [
            "BlobEndpoint", "TableEndpoint", SwitchSasSetting,
            .. names.Tables.Select(t => TableSasPrefix + t),
            BlobSasPrefix + names.SpoolContainer, BlobSasPrefix + names.LeaseContainer,
        ];
        return required.Where(r => !settings.TryGetValue(r, out var value) || value.Length == 0);
    }

    /// <summary>True for a setting that carries the SAS of one table, container or row range.</summary>
    public static bool IsServiceSasSetting(string name) =>
        name.StartsWith(TableSasPrefix, StringComparison.OrdinalIgnoreCase) || name.StartsWith(BlobSasPrefix, StringComparison.OrdinalIgnoreCase)
        || name.StartsWith(TableBatchSasPrefix, StringComparison.OrdinalIgnoreCase)
        || name.Equals(SwitchSasSetting, StringComparison.OrdinalIgnoreCase);

    /// <summary>A connection string's settings (names case-insensitive); values keep their own '=' characters.</summary>
    public static Dictionary<string, string> ParseSettings(string? connectionString)
    {
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in (connectionString ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
                settings[part[..equals].Trim()] = part[(equals + 1)..].Trim();
        }
        return settings;
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

    /// <summary>The views table as its entity-group transactions are sent: <see cref="Views"/>, or a client with the batch SAS.</summary>
    public TableClient ViewBatches { get; }

    /// <summary>The control table as the away switch writes it: <see cref="Control"/>, or a client whose SAS reaches only the switch's row.</summary>
    public TableClient ForwardSwitch { get; }

    /// <summary>Every table of the spool, in the order of <see cref="StorageNames.Tables"/>.</summary>
    public IReadOnlyList<TableClient> Tables { get; }

    /// <summary>Creates the tables and containers that do not exist yet (idempotent).</summary>
    public async Task EnsureCreatedAsync(CancellationToken cancellationToken)
    {
        foreach (var table in Tables)
            await table.CreateIfNotExistsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var container in new[] { Spool, Leases })
            await container.CreateIfNotExistsAsync(PublicAccessType.None, cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
