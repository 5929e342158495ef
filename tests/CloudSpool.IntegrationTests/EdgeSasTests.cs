using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;
using CloudSpool.IntegrationTests.Fixtures;
using MailKit.Net.Pop3;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// A LAN edge runs on a SAS from `cloudspool edge-credentials`, never the account key: it serves mail (reads, views,
/// session claims and leases), and the writes it must not make are refused by storage itself.
/// </summary>
public sealed class EdgeSasTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private PullHarness _spool = null!;

    public async Task InitializeAsync() => _spool = await PullHarness.StartAsync();

    public async Task DisposeAsync() => await _spool.DisposeAsync();

    private static async Task<Pop3Client> ConnectAsync(int port, string login, string password)
    {
        using var timeout = new CancellationTokenSource(Bound);
        var client = new Pop3Client { Timeout = (int)Bound.TotalMilliseconds };
        await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None, timeout.Token);
        await client.AuthenticateAsync(login, password, timeout.Token);
        return client;
    }

    [Fact]
    public async Task An_edge_on_the_issued_sas_serves_mail_and_storage_refuses_what_it_must_not_write()
    {
        await _spool.PutAsync("alice", TestMail.Create("over the sas", bodyBytes: 3000));
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("secret")), CancellationToken.None));
        var admin = _spool.CliEnvironment();

        var issued = await CliProcess.RunAsync(admin, "edge-credentials", "--days", "1");
        Assert.True(issued.ExitCode == 0, issued.Stderr);
        var sas = issued.Stdout.Trim();
        Assert.Contains("SharedAccessSignature=", sas);
        Assert.DoesNotContain("AccountKey", sas);
        var key = StorageConnectionKey(_spool.ConnectionString);
        Assert.DoesNotContain(key, sas);
        Assert.Contains("se=" + DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-dd"), Uri.UnescapeDataString(sas));
        Assert.Contains("valid until", issued.Stderr);

        var env = _spool.CliEnvironment(("CLOUDSPOOL__Storage__ConnectionString", sas), ("CLOUDSPOOL__Edge__StateDirectory", Path.Combine(_spool.TempDirectory, "edge-sas")));
        using var edge = CliProcess.Start(env, "edge");
        var port = await edge.WaitForEdgePortAsync(Bound);

        // Serves mail: login (session lease, view claim), RETR, DELE+QUIT (the view's markers).
        using (var laptop = await ConnectAsync(port, "alice+laptop", "secret"))
        {
            Assert.Equal(1, laptop.Count);
            Assert.Equal("over the sas", (await laptop.GetMessageAsync(0)).Subject);
            await laptop.DeleteMessageAsync(0);
            await laptop.DisconnectAsync(quit: true);
        }
        Assert.Single(await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice+laptop", CancellationToken.None));
        using (var again = await ConnectAsync(port, "alice+laptop", "secret"))
        {
            Assert.Equal(0, again.Count);
            await again.DisconnectAsync(quit: true);
        }
        using (var desktop = await ConnectAsync(port, "alice", "secret"))
        {
            Assert.Equal(1, desktop.Count);
            await desktop.DisconnectAsync(quit: true);
        }

        // What the edge must not do, with the credential it holds: storage refuses each.
        var names = _spool.Runtime.Storage.Names;
        string blobName = "";
        await foreach (var b in _spool.Runtime.Storage.Spool.GetBlobsAsync())
            blobName = b.Name;
        TableEntity row = null!;
        await foreach (var e in _spool.Runtime.Storage.Messages.QueryAsync<TableEntity>(maxPerPage: 1))
        {
            row = e;
            break;
        }
        var blobs = new BlobServiceClient(sas);
        var tables = new TableServiceClient(sas);
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => blobs.GetBlobContainerClient(names.SpoolContainer).GetBlobClient(blobName).DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => tables.GetTableClient(names.MessagesTable).DeleteEntityAsync(row.PartitionKey, row.RowKey)));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => tables.GetTableClient(names.ViewsTable).DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => blobs.GetBlobContainerClient(names.SpoolContainer).DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(async () => { await foreach (var _ in tables.QueryAsync()) { } }));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(async () => { await foreach (var _ in blobs.GetBlobContainerClient(names.SpoolContainer).GetBlobsAsync()) { } }));
        Assert.True(await _spool.Runtime.Storage.Spool.GetBlobClient(blobName).ExistsAsync());

        await edge.TerminateAsync();
        Assert.Equal(0, await edge.WaitAsync(Bound));
        Assert.DoesNotContain("sig=", edge.Stderr + edge.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_sas_token_beside_the_endpoints_works_and_cannot_issue_another()
    {
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("bob", "bob", Pop3Passwords.Hash("secret")), CancellationToken.None));
        var issued = await CliProcess.RunAsync(_spool.CliEnvironment(), "edge-credentials");
        Assert.True(issued.ExitCode == 0, issued.Stderr);
        var parts = issued.Stdout.Trim().Split(";SharedAccessSignature=");
        var env = _spool.CliEnvironment(("CLOUDSPOOL__Storage__ConnectionString", parts[0]), ("CLOUDSPOOL__Storage__SasToken", parts[1]));

        var list = await CliProcess.RunAsync(env, "user", "list");
        Assert.True(list.ExitCode == 0, list.Stderr);
        Assert.Contains("bob", list.Stdout);
        var again = await CliProcess.RunAsync(env, "edge-credentials");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("account key", again.Stderr);

        // A token without endpoints to use it with is a configuration error.
        var alone = await CliProcess.RunAsync(_spool.CliEnvironment(("CLOUDSPOOL__Storage__SasToken", parts[1])), "user", "list");
        Assert.Equal(2, alone.ExitCode);
        Assert.Contains("a SAS token needs", alone.Stderr);
    }

    private static string StorageConnectionKey(string connectionString) =>
        CloudSpool.Host.Configuration.StorageConnection.Parse(connectionString)["AccountKey"];
}
