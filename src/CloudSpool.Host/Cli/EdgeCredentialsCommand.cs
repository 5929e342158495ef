using System.CommandLine;
using Azure.Storage;
using Azure.Data.Tables;
using Azure.Data.Tables.Sas;
using Azure.Storage.Sas;
using CloudSpool.Host.Configuration;
using CloudSpool.Storage.Azure;

namespace CloudSpool.Host.Cli;

/// <summary>
/// `cloudspool edge-credentials`: a connection string for a LAN edge with one service SAS per table and container, so the
/// edge never holds the account key and can write only what it writes: its per-client views (markers, change rows,
/// session claims; delete too, for its sweep of markers whose messages are gone), its session leases, and the status
/// page's away switch (one row). Everything else it reads, and cannot change: messages and their blobs, users, accounts,
/// schedules, ledgers, run history. No token lists containers or tables or creates or deletes one.
/// </summary>
public static class EdgeCredentialsCommand
{
    /// <summary>Read only: the spool's rows, the users and accounts, what the status page shows.</summary>
    private const TableSasPermissions ReadRows = TableSasPermissions.Read;

    /// <summary>
    /// The views: hide (add, update, in batches with the change row), claim a session (update with an ETag), sweep
    /// markers whose messages are gone (delete).
    /// </summary>
    private const TableSasPermissions ViewRows = TableSasPermissions.Read | TableSasPermissions.Add | TableSasPermissions.Update | TableSasPermissions.Delete;

    /// <summary>The tables and containers of the spool, each with what the edge may do there.</summary>
    public static IEnumerable<(string Setting, string Token)> Tokens(StorageNames names, string account, string key, DateTimeOffset expires, bool httpsOnly, bool emulator)
    {
        var starts = DateTimeOffset.UtcNow.AddMinutes(-5); // for a clock on the LAN a little behind the service's
        var tableKey = new TableSharedKeyCredential(account, key);
        var blobKey = new StorageSharedKeyCredential(account, key);
        var tableProtocol = httpsOnly ? TableSasProtocol.Https : TableSasProtocol.HttpsAndHttp;
        string TableToken(string table, TableSasPermissions permissions, string? partition = null, string? row = null) =>
            new TableSasBuilder(table, permissions, expires)
            {
                StartsOn = starts,
                Protocol = tableProtocol,
                PartitionKeyStart = partition,
                PartitionKeyEnd = partition,
                RowKeyStart = row,
                RowKeyEnd = row,
            }.Sign(tableKey);
        string ContainerToken(string container, BlobContainerSasPermissions permissions)
        {
            var builder = new BlobSasBuilder
            {
                BlobContainerName = container,
                Resource = "c",
                StartsOn = starts,
                ExpiresOn = expires,
                Protocol = httpsOnly ? SasProtocol.Https : SasProtocol.HttpsAndHttp,
            };
            builder.SetPermissions(permissions);
            return builder.ToSasQueryParameters(blobKey).ToString();
        }

        // Azurite (3.37) refuses an entity-group transaction signed with a table's own SAS (its batch path names no
        // table, so the signature never matches): against an emulator the views' batches are signed with an account SAS
        // for table rows, without delete (with the container type Azurite's queries want, delete would let it drop tables).
        string EmulatorBatchToken() =>
            new AccountSasBuilder(AccountSasPermissions.Read | AccountSasPermissions.Add | AccountSasPermissions.Update,
                expires, AccountSasServices.Tables, AccountSasResourceTypes.Object | AccountSasResourceTypes.Container)
            {
                StartsOn = starts,
                Protocol = httpsOnly ? SasProtocol.Https : SasProtocol.HttpsAndHttp,
            }.ToSasQueryParameters(blobKey).ToString();

        foreach (var table in names.Tables.Where(t => t != names.ViewsTable))
            yield return (AzureStorage.TableSasPrefix + table, TableToken(table, ReadRows));
        // Azurite lets a table's SAS with delete drop the table itself (Azure does not): there the views get no delete,
        // and the edge's sweep of markers is refused and skipped.
        yield return (AzureStorage.TableSasPrefix + names.ViewsTable, TableToken(names.ViewsTable, emulator ? ViewRows & ~TableSasPermissions.Delete : ViewRows));
        if (emulator)
            yield return (AzureStorage.TableBatchSasPrefix + names.ViewsTable, EmulatorBatchToken());
        // The away switch of the status page: that one row, added or replaced (an upsert).
        yield return (AzureStorage.SwitchSasSetting, TableToken(names.ControlTable, TableSasPermissions.Add | TableSasPermissions.Update,
            StorageNames.ForwardPartition, StorageNames.ForwardSwitchRow));
        yield return (AzureStorage.BlobSasPrefix + names.SpoolContainer, ContainerToken(names.SpoolContainer, BlobContainerSasPermissions.Read));
        // Lease blobs: created on a name's first use, then acquired, renewed and released (each a write).
        yield return (AzureStorage.BlobSasPrefix + names.LeaseContainer, ContainerToken(names.LeaseContainer, BlobContainerSasPermissions.Create | BlobContainerSasPermissions.Write));
    }

    /// <summary>An emulator's endpoint: an address, or localhost (path-style), as Azurite's are.</summary>
    public static bool IsEmulator(Uri endpoint) => endpoint.IsLoopback || System.Net.IPAddress.TryParse(endpoint.Host, out _);

    public static Command Create(CommandContext context)
    {
        var days = new Option<int>("--days") { Description = "How long the credential is valid, in days (1-3650)", DefaultValueFactory = _ => 90 };
        days.Validators.Add(r =>
        {
            if (r.GetValue(days) is < 1 or > 3650)
                r.AddError("--days: expected 1-3650");
        });
        var command = new Command("edge-credentials",
            "Print a connection string for `cloudspool edge` on the LAN (set it as Storage:ConnectionString there), a SAS per table and container: " +
            "it reads the spool and writes only views, session leases and the away switch, and expires after --days. Needs the account key here.") { days };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var settings = StorageConnection.Parse(runtime.ConnectionString);
            if (!settings.TryGetValue("AccountName", out var name) || !settings.TryGetValue("AccountKey", out var key))
            {
                await context.Error.WriteLineAsync("edge-credentials signs with the account key: Storage:ConnectionString must hold AccountName and AccountKey (a SAS cannot issue another)").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            var blob = runtime.Storage.BlobServiceUri;
            var table = runtime.Storage.TableServiceUri;
            var expires = DateTimeOffset.UtcNow.AddDays(parse.GetValue(days));
            var httpsOnly = blob.Scheme == Uri.UriSchemeHttps && table.Scheme == Uri.UriSchemeHttps;
            var tokens = Tokens(runtime.Storage.Names, name, key, expires, httpsOnly, IsEmulator(table)).Select(t => $";{t.Setting}={t.Token}");
            await context.Out.WriteLineAsync($"BlobEndpoint={blob.GetLeftPart(UriPartial.Path).TrimEnd('/')};TableEndpoint={table.GetLeftPart(UriPartial.Path).TrimEnd('/')}{string.Concat(tokens)}").ConfigureAwait(false);
            await context.Error.WriteLineAsync(
                $"a SAS per table and container for the edge, valid until {expires:yyyy-MM-dd HH:mm} UTC: reads the spool, users and status; writes only " +
                "its views, session leases and the away switch's row; lists nothing, creates and deletes no table or container. Keep it as secret as a " +
                "password (the edge's mode-600 environment file); issue a new one before it expires; rotating the account key revokes it." +
                (runtime.Options.Storage.NamePrefix.Length > 0 ? $" The edge needs Storage:NamePrefix '{runtime.Options.Storage.NamePrefix}' too." : "")).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }
}
