using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;
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
        var raw = TestMail.Create("over the sas", bodyBytes: 3000);
        var stored = await _spool.PutAsync("alice", raw);
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("secret")), CancellationToken.None));
        var admin = _spool.CliEnvironment();

        var issued = await CliProcess.RunAsync(admin, "edge-credentials", "--days", "1");
        Assert.True(issued.ExitCode == 0, issued.Stderr);
        var sas = issued.Stdout.Trim();
        Assert.DoesNotContain("AccountKey", sas);
        Assert.DoesNotContain(StorageConnectionKey(_spool.ConnectionString), sas);
        Assert.Contains("valid until", issued.Stderr);
        // A service SAS per table and container, each expiring as asked.
        var settings = CloudSpool.Host.Configuration.StorageConnection.Parse(sas);
        var names = _spool.Runtime.Storage.Names;
        var tokens = settings.Where(s => AzureStorage.IsServiceSasSetting(s.Key)).ToList();
        Assert.Equal(10, tokens.Count);
        foreach (var (_, token) in tokens)
        {
            Assert.Contains("se=" + DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-dd"), Uri.UnescapeDataString(token));
        }
        // Service SAS, not an account SAS; the views' batches excepted on Azurite, which refuses a batch signed with a table's SAS.
        Assert.All(tokens.Where(t => t.Key != "TableBatchSas." + names.ViewsTable), t => Assert.DoesNotContain("ss=", t.Value));
        Assert.Contains("tn=" + names.MessagesTable, settings["TableSas." + names.MessagesTable]);

        var env = _spool.CliEnvironment(("CLOUDSPOOL__Storage__ConnectionString", sas), ("CLOUDSPOOL__Edge__StateDirectory", Path.Combine(_spool.TempDirectory, "edge-sas")));
        using var edge = CliProcess.Start(env, "edge");
        var port = await edge.WaitForEdgePortAsync(Bound);

        // Serves mail byte-exact: login (session lease, view claim), LIST, RETR, DELE+QUIT (the view's markers).
        Pop3Client first;
        try
        {
            first = await ConnectAsync(port, "alice+laptop", "secret");
        }
        catch (MailKit.Security.AuthenticationException ex)
        {
            throw new InvalidOperationException("the edge refused the login; its log:\n" + edge.Stderr, ex);
        }
        using (var laptop = first)
        {
            Assert.Equal(1, laptop.Count);
            Assert.Equal(raw.Length, await laptop.GetMessageSizeAsync(0));
            using (var stream = await laptop.GetStreamAsync(0))
            using (var copy = new MemoryStream())
            {
                await stream.CopyToAsync(copy);
                Assert.Equal(raw, copy.ToArray());
            }
            await laptop.DeleteMessageAsync(0);
            await laptop.DisconnectAsync(quit: true);
        }
        var hidden = await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice+laptop", CancellationToken.None);
        Assert.True(hidden.SetEquals([stored.MessageKey]), edge.Stderr);
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
        var spool = _spool.Runtime.Storage;
        string blobName = "";
        await foreach (var b in spool.Spool.GetBlobsAsync())
            blobName = b.Name;
        var messageRow = await FirstRowAsync(spool.Messages);
        var accountRow = new TableEntity(StorageNames.AccountPartition, "evil") { ["Host"] = "attacker.example" };
        var held = new AzureStorage(sas, _spool.Runtime.Options.Storage.NamePrefix);
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Control.UpsertEntityAsync(accountRow)));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Control.UpsertEntityAsync(new TableEntity(StorageNames.Pop3UserPartition, "alice") { ["Mailbox"] = "bob" })));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Messages.UpsertEntityAsync(messageRow, TableUpdateMode.Replace)));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Messages.DeleteEntityAsync(messageRow.PartitionKey, messageRow.RowKey)));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Runs.AddEntityAsync(new TableEntity("pull:isp", "0"))));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Forwards.AddEntityAsync(new TableEntity("alice", "x"))));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Spool.GetBlobClient(blobName).UploadAsync(BinaryData.FromString("forged"), overwrite: true)));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Spool.GetBlobClient("alice/00/new.eml").UploadAsync(BinaryData.FromString("forged"))));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Spool.GetBlobClient(blobName).DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Views.DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.ViewBatches.DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Spool.DeleteAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => held.Leases.GetBlobClient("x").DownloadContentAsync()));
        // A token of one table does not open another, nor create one.
        var runsToken = new AzureSasCredential(settings["TableSas." + names.RunsTable]);
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => new TableServiceClient(held.TableServiceUri, runsToken).GetTableClient(names.ControlTable).UpsertEntityAsync(accountRow)));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => new TableServiceClient(held.TableServiceUri, runsToken).GetTableClient("evil").CreateAsync()));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(() => new TableServiceClient(held.TableServiceUri, runsToken).CreateTableAsync("evil")));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(async () => { await foreach (var _ in new TableServiceClient(held.TableServiceUri, runsToken).QueryAsync()) { } }));
        Assert.Equal(403, await StorageCalls.StatusOfAsync(async () => { await foreach (var _ in held.Spool.GetBlobsAsync()) { } }));
        Assert.True(await spool.Spool.GetBlobClient(blobName).ExistsAsync());
        Assert.False((await spool.Control.GetEntityIfExistsAsync<TableEntity>(StorageNames.AccountPartition, "evil")).HasValue);

        // What it may write beyond views and leases: the away switch's row (the status page). Its sweep of view markers
        // whose messages are gone is refused on Azurite, where a table's SAS with delete could drop the table.
        var forward = new AzureForwardStore(held, TimeProvider.System);
        await forward.SetSwitchAsync(new CloudSpool.Core.Forward.ForwardSwitchState { On = true, Note = "from the phone" }, CancellationToken.None);
        Assert.Equal("from the phone", (await new AzureForwardStore(spool, TimeProvider.System).GetSwitchAsync(CancellationToken.None)).Note);
        await Assert.ThrowsAsync<UnauthorizedAccessException>(() =>
            new AzureClientViewStore(held, TimeProvider.System).ForgetAsync("alice", "alice+laptop", [stored.MessageKey], CancellationToken.None));
        Assert.Single(await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice+laptop", CancellationToken.None));

        await edge.TerminateAsync();
        Assert.Equal(0, await edge.WaitAsync(Bound));
        Assert.DoesNotContain("sig=", edge.Stderr + edge.Stdout, StringComparison.Ordinal);
    }

    private static async Task<TableEntity> FirstRowAsync(TableClient table)
    {
        await foreach (var e in table.QueryAsync<TableEntity>(maxPerPage: 1))
            return e;
        throw new InvalidOperationException("the table is empty");
    }

    [Fact]
    public async Task A_single_account_sas_token_beside_the_endpoints_still_works_and_cannot_issue_another()
    {
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("bob", "bob", Pop3Passwords.Hash("secret")), CancellationToken.None));
        // One account SAS for everything, as an operator may have issued before SAS per table and container.
        var admin = CloudSpool.Host.Configuration.StorageConnection.Parse(_spool.ConnectionString);
        var token = new AccountSasBuilder(AccountSasPermissions.Read, DateTimeOffset.UtcNow.AddHours(1), AccountSasServices.Blobs | AccountSasServices.Tables,
                AccountSasResourceTypes.Object | AccountSasResourceTypes.Container)
            .ToSasQueryParameters(new Azure.Storage.StorageSharedKeyCredential(admin["AccountName"], admin["AccountKey"])).ToString();
        var endpoints = $"BlobEndpoint={_spool.Runtime.Storage.BlobServiceUri.GetLeftPart(UriPartial.Path).TrimEnd('/')};TableEndpoint={_spool.Runtime.Storage.TableServiceUri.GetLeftPart(UriPartial.Path).TrimEnd('/')}";
        var env = _spool.CliEnvironment(("CLOUDSPOOL__Storage__ConnectionString", endpoints), ("CLOUDSPOOL__Storage__SasToken", token));

        var list = await CliProcess.RunAsync(env, "user", "list");
        Assert.True(list.ExitCode == 0, list.Stderr);
        Assert.Contains("bob", list.Stdout);
        var again = await CliProcess.RunAsync(env, "edge-credentials");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("account key", again.Stderr);
        var whole = await CliProcess.RunAsync(_spool.CliEnvironment(("CLOUDSPOOL__Storage__ConnectionString", endpoints + ";SharedAccessSignature=" + token)), "user", "list");
        Assert.True(whole.ExitCode == 0, whole.Stderr);

        // A token without endpoints to use it with is a configuration error.
        var alone = await CliProcess.RunAsync(_spool.CliEnvironment(("CLOUDSPOOL__Storage__SasToken", token)), "user", "list");
        Assert.Equal(2, alone.ExitCode);
        Assert.Contains("a SAS token needs", alone.Stderr);
    }

    [Fact]
    public async Task The_away_switch_on_the_status_page_of_an_edge_on_its_sas_switches()
    {
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("s3cret-pw")), CancellationToken.None));
        var issued = await CliProcess.RunAsync(_spool.CliEnvironment(), "edge-credentials");
        Assert.True(issued.ExitCode == 0, issued.Stderr);
        var admin = StatusPageTests.PageEnvironment(_spool);
        var env = StatusPageTests.PageEnvironment(_spool, ("CLOUDSPOOL__Storage__ConnectionString", issued.Stdout.Trim()),
            ("CLOUDSPOOL__Edge__StateDirectory", Path.Combine(_spool.TempDirectory, "edge-switch")));
        using var edge = CliProcess.Start(env, "edge");
        var url = await StatusPageTests.WaitForPageAsync(edge);
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new System.Net.CookieContainer() };
        using var client = new HttpClient(handler) { BaseAddress = url, Timeout = Bound };
        var token = await StatusPageTests.TokenOfAsync(client, "login");
        var login = await client.PostAsync(new Uri("login", UriKind.Relative), StatusPageTests.Form(("_token", token), ("user", "owner"), ("password", "s3cret-pw")));
        Assert.Equal(System.Net.HttpStatusCode.SeeOther, login.StatusCode);

        token = await StatusPageTests.TokenOfAsync(client, "/");
        var on = await client.PostAsync(new Uri("forward", UriKind.Relative), StatusPageTests.Form(("_token", token), ("action", "on")));
        Assert.True(on.StatusCode == System.Net.HttpStatusCode.SeeOther, await on.Content.ReadAsStringAsync() + edge.Stderr);
        Assert.True(await StatusPageTests.ForwardIsOnAsync(admin));
        token = await StatusPageTests.TokenOfAsync(client, "/");
        var off = await client.PostAsync(new Uri("forward", UriKind.Relative), StatusPageTests.Form(("_token", token), ("action", "off")));
        Assert.Equal(System.Net.HttpStatusCode.SeeOther, off.StatusCode);
        Assert.False(await StatusPageTests.ForwardIsOnAsync(admin));

        await edge.TerminateAsync();
        Assert.Equal(0, await edge.WaitAsync(Bound));
    }

    private static string StorageConnectionKey(string connectionString) =>
        CloudSpool.Host.Configuration.StorageConnection.Parse(connectionString)["AccountKey"];
}
