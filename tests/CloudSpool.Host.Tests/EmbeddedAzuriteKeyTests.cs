using System.Text.RegularExpressions;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.TestSupport.Fixtures;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.Host.Tests;

/// <summary>
/// The embedded Azurite cannot be taken over by another local user: it runs with a key generated for its data folder
/// (kept mode 0600 there), and a listener on its ports that does not accept that key is never used.
/// </summary>
public sealed class EmbeddedAzuriteKeyTests : IDisposable
{
    /// <summary>Azurite's public development key (documented by Microsoft), what every Azurite accepted before.</summary>
    private const string PublicKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly string _temp = Directory.CreateTempSubdirectory("cloudspool-azurite-key-").FullName;

    private static string WithKey(string connectionString, string key) =>
        Regex.Replace(connectionString, "AccountKey=[^;]*", "AccountKey=" + key);

    /// <summary>An Azurite as an older CloudSpool (or anyone) starts it: the development account with its public key.</summary>
    private static Task<EmbeddedAzurite> StartWithPublicKeyAsync(string location)
    {
        Directory.CreateDirectory(location);
        File.WriteAllText(Path.Combine(location, EmbeddedAzurite.KeyFileName), PublicKey + "\n");
        return EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, CancellationToken.None);
    }

    [Fact]
    public async Task The_data_folder_gets_its_own_key_kept_mode_0600_and_the_public_key_is_refused()
    {
        var location = Path.Combine(_temp, "data");
        string key;
        await using (var azurite = await EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, CancellationToken.None))
        {
            var keyFile = Path.Combine(location, EmbeddedAzurite.KeyFileName);
            Assert.True(File.Exists(keyFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(location));
            key = File.ReadAllText(keyFile).Trim();
            Assert.NotEqual(PublicKey, key);
            Assert.Equal(64, Convert.FromBase64String(key).Length);
            Assert.Contains("AccountKey=" + key, azurite.ConnectionString);

            // The generated key works; the public one is refused on blob and table alike.
            await new TableServiceClient(azurite.ConnectionString).CreateTableIfNotExistsAsync("keyed");
            var publicKey = WithKey(azurite.ConnectionString, PublicKey);
            Assert.Equal(403, await StorageCalls.StatusOfAsync(() => new TableServiceClient(publicKey).GetTableClient("keyed").AddEntityAsync(new TableEntity("p", "r"))));
            Assert.Equal(403, await StorageCalls.StatusOfAsync(() => new BlobServiceClient(publicKey).GetBlobContainerClient("keyed").CreateIfNotExistsAsync()));
            Assert.False(await new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("keyed").ExistsAsync());
        }

        // The next start on the folder uses the same key, and finds what the first one wrote.
        await using var again = await EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, CancellationToken.None);
        Assert.Contains("AccountKey=" + key, again.ConnectionString);
        Assert.Null(await StorageCalls.StatusOfAsync(() => new TableServiceClient(again.ConnectionString).GetTableClient("keyed").AddEntityAsync(new TableEntity("p", "r"))));
    }

    [Fact]
    public async Task A_listener_that_does_not_accept_the_key_is_never_used_and_the_command_exits_1()
    {
        // Someone else's Azurite on the ports CloudSpool is configured for, with the public key.
        await using var foreign = await StartWithPublicKeyAsync(Path.Combine(_temp, "foreign"));
        var env = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_CONFIG"] = "",
            ["CLOUDSPOOL__Storage__Azurite__Location"] = Path.Combine(_temp, "mine"),
            ["CLOUDSPOOL__Storage__Azurite__BlobPort"] = foreign.BlobPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CLOUDSPOOL__Storage__Azurite__QueuePort"] = EmbeddedAzurite.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["CLOUDSPOOL__Storage__Azurite__TablePort"] = foreign.TablePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["KEY_TEST_PW"] = "pw",
        };

        var add = await CliProcess.RunAsync(env, "account", "add", "home", "--host", "127.0.0.1", "--user", "me", "--password-ref", "env:KEY_TEST_PW", "--mailbox", "me");
        Assert.True(add.ExitCode == 1, add.Stdout + add.Stderr);
        Assert.Contains("does not accept the key", add.Stderr);
        Assert.Contains("it is not used", add.Stderr);

        // Nothing reached it: not one table or container was created there.
        var tables = new List<string>();
        await foreach (var table in new TableServiceClient(foreign.ConnectionString).QueryAsync())
            tables.Add(table.Name);
        Assert.Empty(tables);
        var containers = new List<string>();
        await foreach (var container in new BlobServiceClient(foreign.ConnectionString).GetBlobContainersAsync())
            containers.Add(container.Name);
        Assert.Empty(containers);

        // The in-process start refuses the same way.
        var options = new AzuriteOptions { Location = Path.Combine(_temp, "mine"), BlobPort = foreign.BlobPort, TablePort = foreign.TablePort, QueuePort = EmbeddedAzurite.FreePort() };
        await Assert.ThrowsAsync<AzuriteRefusedException>(() => EmbeddedAzurite.StartAsync(options, NullLogger.Instance, CancellationToken.None));
    }

    [Fact]
    public async Task A_data_folder_written_under_the_public_key_opens_with_a_generated_key_and_keeps_its_data()
    {
        var location = Path.Combine(_temp, "old");
        await using (var old = await StartWithPublicKeyAsync(location))
        {
            var table = new TableServiceClient(old.ConnectionString).GetTableClient("legacy");
            await table.CreateIfNotExistsAsync();
            await table.AddEntityAsync(new TableEntity("alice", "m1") { ["Subject"] = "kept" });
            var container = new BlobServiceClient(old.ConnectionString).GetBlobContainerClient("legacy");
            await container.CreateIfNotExistsAsync();
            await container.GetBlobClient("m1").UploadAsync(BinaryData.FromString("bytes kept"));
        }
        // A folder from before keys were generated has no key file.
        File.Delete(Path.Combine(location, EmbeddedAzurite.KeyFileName));

        var options = new AzuriteOptions { Location = location, BlobPort = EmbeddedAzurite.FreePort(), TablePort = EmbeddedAzurite.FreePort(), QueuePort = EmbeddedAzurite.FreePort() };
        await using var azurite = await EmbeddedAzurite.StartAsync(options, NullLogger.Instance, CancellationToken.None);
        Assert.True(azurite.Owned);
        Assert.DoesNotContain(PublicKey, azurite.ConnectionString);
        var row = await new TableServiceClient(azurite.ConnectionString).GetTableClient("legacy").GetEntityAsync<TableEntity>("alice", "m1");
        Assert.Equal("kept", row.Value.GetString("Subject"));
        var blob = await new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("legacy").GetBlobClient("m1").DownloadContentAsync();
        Assert.Equal("bytes kept", blob.Value.Content.ToString());
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => new TableServiceClient(WithKey(azurite.ConnectionString, PublicKey)).GetTableClient("legacy").GetEntityAsync<TableEntity>("alice", "m1")));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_temp, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
