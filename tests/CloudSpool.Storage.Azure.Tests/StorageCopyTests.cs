using System.Globalization;
using System.Net;
using Azure.Data.Tables;
using Azure.Storage.Blobs.Models;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;
using CloudSpool.Host;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.Pop3;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;
using MailKit.Net.Pop3;
using MailKit.Security;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.Storage.Azure.Tests;

/// <summary>
/// `cloudspool storage copy`: a spool pulled from Dovecot (packs), with large and many small messages, POP3 users,
/// a client's view and forward-ledger rows, copied from the shared Azurite into an Azurite of its own, killed (-9)
/// midway and run again; then every row is on the target as it was, and an edge on the target serves every message
/// byte for byte with the views intact.
/// </summary>
public sealed class StorageCopyTests : IAsyncLifetime
{
    private DovecotServer _dovecot = null!;
    private PullHarness _source = null!;
    private EmbeddedAzurite _target = null!;
    private string _temp = null!;

    public async Task InitializeAsync()
    {
        _temp = Directory.CreateTempSubdirectory("cloudspool-test-copy-").FullName;
        _dovecot = await DovecotServer.StartAsync();
        _source = await PullHarness.StartAsync();
        _target = await EmbeddedAzurite.StartPrivateAsync(Path.Combine(_temp, "target"), NullLogger.Instance, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _target.DisposeAsync();
        await _source.DisposeAsync();
        await _dovecot.DisposeAsync();
        Directory.Delete(_temp, recursive: true);
    }

    private static async Task<SortedDictionary<string, string>> RowsAsync(TableClient table)
    {
        var rows = new SortedDictionary<string, string>(StringComparer.Ordinal);
        await foreach (var row in table.QueryAsync<TableEntity>())
        {
            if (row.PartitionKey == StorageCopy.CheckpointPartition)
                continue;
            var properties = row.Where(p => p.Key is not ("Timestamp" or "odata.etag"))
                .OrderBy(p => p.Key, StringComparer.Ordinal)
                .Select(p => $"{p.Key}={p.Value?.GetType().Name}:{(p.Value is byte[] b ? Convert.ToBase64String(b) : Convert.ToString(p.Value, CultureInfo.InvariantCulture))}");
            rows[row.PartitionKey + "\n" + row.RowKey] = string.Join("\n", properties);
        }
        return rows;
    }

    private static async Task<List<byte[]>> RetrAllAsync(int port, string login)
    {
        using var client = new Pop3Client();
        await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None);
        await client.AuthenticateAsync(login, "pw");
        var result = new List<byte[]>();
        for (var i = 0; i < client.Count; i++)
        {
            await using var stream = await client.GetStreamAsync(i);
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            result.Add(copy.ToArray());
        }
        return result;
    }

    private static async Task HideFirstAsync(int port, string login)
    {
        using var client = new Pop3Client();
        await client.ConnectAsync("127.0.0.1", port, SecureSocketOptions.None);
        await client.AuthenticateAsync(login, "pw");
        await client.DeleteMessageAsync(0);
        await client.DisconnectAsync(quit: true);
    }

    private static async Task<(SpoolEdge Edge, Pop3Server Server, int Port)> StartEdgeAsync(Runtime runtime)
    {
        var edge = runtime.CreateEdge();
        var server = edge.CreateServer(new Pop3ServerOptions());
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        return (edge, server, server.LocalEndPoints[0].Port);
    }

    [Fact]
    public async Task A_copy_killed_midway_resumes_and_the_target_serves_every_message_byte_for_byte()
    {
        // The spool: mail pulled from Dovecot (small ones in packs), a large message, many small ones on their own.
        _dovecot.AddUser("copy", "pw");
        for (var i = 0; i < 30; i++)
            _dovecot.DeliverRaw("copy", TestMail.Create($"pulled {i}", bodyBytes: 300 + i * 50));
        var account = PullHarness.Account(_dovecot, "copy", "copy", "pw", "alice");
        Assert.Equal(30, (await _source.PullAsync(account)).Stored);
        await _source.PutAsync("alice", TestMail.Create("large", bodyBytes: 3_000_000));
        for (var i = 0; i < 400; i += 20)
            await Task.WhenAll(Enumerable.Range(i, 20).Select(n => _source.PutAsync("alice", TestMail.Create($"small {n}"))));
        Assert.True(await _source.Runtime.Pop3Users.AddAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("pw")), CancellationToken.None));
        var (sourceEdge, sourceServer, sourcePort) = await StartEdgeAsync(_source.Runtime);
        await using (sourceEdge)
        await using (sourceServer)
        {
            await HideFirstAsync(sourcePort, "alice+laptop");
        }
        // Forward-ledger rows of every property type the spool writes.
        await _source.Runtime.Storage.Forwards.AddEntityAsync(new TableEntity("alice", "k1-phone")
        {
            ["State"] = "sent", ["Attempts"] = 2L, ["At"] = DateTimeOffset.UnixEpoch.AddDays(20_000), ["Ok"] = true, ["Raw"] = new byte[] { 0, 1, 2 }, ["Ratio"] = 0.5,
        });
        var expected = new List<SortedDictionary<string, string>>();
        foreach (var table in _source.Runtime.Storage.Tables)
            expected.Add(await RowsAsync(table));
        var messages = await _source.ListAsync("alice");
        Assert.Equal(431, messages.Count);

        // The copy, killed once it has saved a position among the blobs, then run again.
        var targetStorage = new AzureStorage(_target.ConnectionString, _source.Prefix);
        var env = _source.CliEnvironment(("CLOUDSPOOL_TEST_COPY_TARGET", _target.ConnectionString));
        using (var first = CliProcess.Start(env, "storage", "copy", "--to", "env:CLOUDSPOOL_TEST_COPY_TARGET"))
        {
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (!(await targetStorage.Control.GetEntityIfExistsAsync<TableEntity>(StorageCopy.CheckpointPartition, "blobs")).HasValue)
            {
                Assert.True(DateTime.UtcNow < deadline, "the copy saved no position among the blobs within 120 s");
                Assert.False(first.HasExited, "the copy ended before it could be killed midway");
                await Task.Delay(20);
            }
            first.KillHard();
        }
        var verified = 0;
        await foreach (var blob in targetStorage.Spool.GetBlobsAsync(new GetBlobsOptions { Traits = BlobTraits.Metadata }))
            verified += blob.Metadata.ContainsKey(StorageCopy.VerifiedMetadata) ? 1 : 0;
        var sourceBlobs = 0;
        await foreach (var blob in _source.Runtime.Storage.Spool.GetBlobsAsync())
            sourceBlobs++;
        Assert.InRange(verified, 1, sourceBlobs - 100);

        var again = await CliProcess.RunAsync(env, "storage", "copy", "--to", "env:CLOUDSPOOL_TEST_COPY_TARGET");

        Assert.True(again.ExitCode == 0, again.Stdout + again.Stderr);
        Assert.Contains("resumed; ", again.Stdout, StringComparison.Ordinal);
        Assert.Contains("copy complete", again.Stdout, StringComparison.Ordinal);
        var i2 = 0;
        foreach (var table in targetStorage.Tables)
            Assert.Equal(expected[i2++], await RowsAsync(table));
        Assert.False((await targetStorage.Control.GetEntityIfExistsAsync<TableEntity>(StorageCopy.CheckpointPartition, "blobs")).HasValue);

        // Run again after it finished: nothing is copied twice, nothing changes.
        var third = await CliProcess.RunAsync(env, "storage", "copy", "--to", "env:CLOUDSPOOL_TEST_COPY_TARGET");
        Assert.Equal(0, third.ExitCode);
        Assert.Contains($", 0 blobs (0.0 MiB) copied and verified, {sourceBlobs} verified before", third.Stdout, StringComparison.Ordinal);

        // The edge on the target: every message byte for byte, and the laptop's view still hides what it deleted.
        var options = new CloudSpoolOptions
        {
            Storage = new StorageOptions { ConnectionString = _target.ConnectionString, NamePrefix = _source.Prefix },
            Edge = new EdgeOptions { StateDirectory = Path.Combine(_temp, "target-edge") },
        };
        await using var targetRuntime = await Runtime.StartAsync(options, NullLoggerFactory.Instance, CancellationToken.None);
        var (edge, server, port) = await StartEdgeAsync(targetRuntime);
        await using (edge)
        await using (server)
        {
            var served = await RetrAllAsync(port, "alice");
            Assert.Equal(messages.Count, served.Count);
            for (var i = 0; i < messages.Count; i++)
                Assert.Equal(await _source.ReadRawAsync(messages[i]), served[i]);
            Assert.Equal(messages.Count - 1, (await RetrAllAsync(port, "alice+laptop")).Count);
        }
    }

    [Fact]
    public async Task A_target_that_is_the_spool_itself_or_no_connection_string_is_refused()
    {
        var env = _source.CliEnvironment(("CLOUDSPOOL_TEST_COPY_SELF", _source.ConnectionString));
        var self = await CliProcess.RunAsync(env, "storage", "copy", "--to", "env:CLOUDSPOOL_TEST_COPY_SELF");
        Assert.Equal(2, self.ExitCode);
        Assert.Contains("that is the spool's own storage", self.Stderr, StringComparison.Ordinal);
        var unset = await CliProcess.RunAsync(env, "storage", "copy", "--to", "env:CLOUDSPOOL_TEST_COPY_UNSET");
        Assert.Equal(2, unset.ExitCode);
        Assert.Contains("not set or empty", unset.Stderr, StringComparison.Ordinal);
        var garbage = await CliProcess.RunAsync(env, "storage", "copy", "--to", "not a connection string");
        Assert.Equal(2, garbage.ExitCode);
        Assert.Contains("not a storage connection string", garbage.Stderr, StringComparison.Ordinal);
    }
}
