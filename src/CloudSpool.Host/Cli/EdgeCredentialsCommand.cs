using System.CommandLine;
using Azure.Storage;
using Azure.Storage.Sas;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Cli;

/// <summary>
/// `cloudspool edge-credentials`: a SAS connection string for a LAN edge, so the edge never holds the account key. It is
/// an account SAS limited to what the edge does: read blobs and rows (messages, users, status), add and update rows (its
/// per-client views and session claims) and write blobs (its session leases), over objects only. It cannot delete
/// anything, list containers or tables, create or delete a table or container, or change the account's settings.
/// </summary>
public static class EdgeCredentialsCommand
{
    /// <summary>What the edge needs and nothing more an account SAS can leave out (see the class comment).</summary>
    public static readonly AccountSasPermissions Permissions =
        AccountSasPermissions.Read | AccountSasPermissions.Write | AccountSasPermissions.Add | AccountSasPermissions.Update;

    /// <summary>
    /// Objects only (blobs and entities). Azurite (3.37) wants the container resource type for Query Entities, where
    /// Azure wants the object type, so an emulator's endpoint (an address, or localhost: path-style) gets that one too.
    /// </summary>
    public static AccountSasResourceTypes ResourceTypesFor(Uri tableEndpoint) =>
        tableEndpoint.IsLoopback || System.Net.IPAddress.TryParse(tableEndpoint.Host, out _)
            ? AccountSasResourceTypes.Object | AccountSasResourceTypes.Container
            : AccountSasResourceTypes.Object;

    public static Command Create(CommandContext context)
    {
        var days = new Option<int>("--days") { Description = "How long the credential is valid, in days (1-3650)", DefaultValueFactory = _ => 90 };
        days.Validators.Add(r =>
        {
            if (r.GetValue(days) is < 1 or > 3650)
                r.AddError("--days: expected 1-3650");
        });
        var command = new Command("edge-credentials",
            "Print a SAS connection string for `cloudspool edge` on the LAN (set it as Storage:ConnectionString there): it reads the spool and " +
            "writes views and session leases only, deletes nothing, and expires after --days. Needs the account key here.") { days };
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
            var sas = new AccountSasBuilder(Permissions, expires, AccountSasServices.Blobs | AccountSasServices.Tables, ResourceTypesFor(table))
            {
                // A few minutes back, for a clock on the LAN a little behind the service's.
                StartsOn = DateTimeOffset.UtcNow.AddMinutes(-5),
                Protocol = blob.Scheme == Uri.UriSchemeHttps && table.Scheme == Uri.UriSchemeHttps ? SasProtocol.Https : SasProtocol.HttpsAndHttp,
            }.ToSasQueryParameters(new StorageSharedKeyCredential(name, key)).ToString();
            await context.Out.WriteLineAsync($"BlobEndpoint={blob.GetLeftPart(UriPartial.Path).TrimEnd('/')};TableEndpoint={table.GetLeftPart(UriPartial.Path).TrimEnd('/')};SharedAccessSignature={sas}").ConfigureAwait(false);
            await context.Error.WriteLineAsync(
                $"an account SAS for the edge, valid until {expires:yyyy-MM-dd HH:mm} UTC: reads blobs and rows, adds and updates rows and writes blobs " +
                "(views, session leases); deletes nothing, lists nothing, creates no table or container. Keep it as secret as a password " +
                "(the edge's mode-600 environment file); issue a new one before it expires; rotating the account key revokes it." +
                (runtime.Options.Storage.NamePrefix.Length > 0 ? $" The edge needs Storage:NamePrefix '{runtime.Options.Storage.NamePrefix}' too." : "")).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }
}
