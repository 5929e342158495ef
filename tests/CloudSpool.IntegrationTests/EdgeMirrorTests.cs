using System.Net;
using System.Runtime.CompilerServices;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Spool;
using CloudSpool.Edge;
using CloudSpool.Host;
using CloudSpool.Host.Azurite;
using CloudSpool.Host.Configuration;
using CloudSpool.Pop3;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;
using MailKit.Net.Pop3;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The edge's local mirror of the spool on a real Azurite: the index kept fresh in the background and persisted,
/// the blob cache filled ahead of time and serving while storage is down, and the one-session rule across edges.
/// </summary>
public sealed partial class EdgeMirrorTests : IAsyncLifetime
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);
    private PullHarness _spool = null!;
    private string _state = null!;
    private readonly List<IAsyncDisposable> _cleanup = [];

    public async Task InitializeAsync()
    {
        _spool = await PullHarness.StartAsync();
        _state = Path.Combine(_spool.TempDirectory, "mirror-state");
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("alice", "alice", Pop3Passwords.Hash("secret")), CancellationToken.None));
    }

    public async Task DisposeAsync()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
            await _cleanup[i].DisposeAsync();
        await _spool.DisposeAsync();
    }

    private static SpoolEdgeOptions Options(string state, TimeSpan? lookback = null, bool prefetch = true, params string[] shared) => new()
    {
        StateDirectory = state,
        CacheBytes = 64L << 20,
        SyncInterval = TimeSpan.FromMilliseconds(200),
        Lookback = lookback ?? TimeSpan.FromMinutes(5),
        Prefetch = prefetch,
        SharedDeleteMailboxes = shared.ToHashSet(StringComparer.Ordinal),
    };

    private SpoolEdge NewEdge(Runtime runtime, SpoolEdgeOptions options, ISpoolReader? reader = null, IClientViewStore? views = null, IPop3UserStore? users = null,
        ILeaseManager? leases = null)
    {
        var edge = new SpoolEdge(users ?? runtime.Pop3Users, views ?? runtime.ClientViews, reader ?? runtime.SpoolReader, leases ?? runtime.Leases, options, NullLoggerFactory.Instance);
        _cleanup.Add(edge);
        return edge;
    }

    private async Task<int> ServeAsync(SpoolEdge edge)
    {
        var server = edge.CreateServer(new Pop3ServerOptions { FailedLoginDelay = TimeSpan.FromMilliseconds(50) });
        _cleanup.Add(server);
        await server.StartAsync(new IPEndPoint(IPAddress.Loopback, 0));
        return server.LocalEndPoints[0].Port;
    }

    private static async Task<Pop3Client> ConnectAsync(int port, string login, string password = "secret")
    {
        using var timeout = new CancellationTokenSource(Bound);
        var client = new Pop3Client { Timeout = (int)Bound.TotalMilliseconds };
        await client.ConnectAsync("127.0.0.1", port, MailKit.Security.SecureSocketOptions.None, timeout.Token);
        await client.AuthenticateAsync(login, password, timeout.Token);
        return client;
    }

    private Task<SpoolMessage> PutAsync(string subject, int bodyBytes = 100, string mailbox = "alice") =>
        SpoolWriter.PutAsync(_spool.Runtime.Spool, _spool.Runtime.SpoolReader, mailbox, TestMail.Create(subject, bodyBytes: bodyBytes));

    private static async Task WaitForAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for " + what);
            await Task.Delay(50);
        }
    }

    /// <summary>Three messages for alice, edge A on views that count their calls and edge B on its own runtime.</summary>
    private async Task<(CountingViews Counting, int PortA, int PortB, PullHarness Other)> ThreeMessagesOnTwoEdgesAsync()
    {
        await PutAsync("one");
        await PutAsync("two");
        await PutAsync("three");
        var counting = new CountingViews(_spool.Runtime.ClientViews);
        var portA = await ServeAsync(NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a")), views: counting));
        var other = await PullHarness.AttachAsync(_spool);
        var portB = await ServeAsync(NewEdge(other.Runtime, Options(Path.Combine(_state, "b"))));
        return (counting, portA, portB, other);
    }

    /// <summary>One poll of a mail client: log in, count, delete the first message when asked, QUIT.</summary>
    private static async Task<int> PollAsync(int port, string login, bool deleteFirst = false)
    {
        using var client = await ConnectAsync(port, login);
        var count = client.Count;
        if (deleteFirst)
            await client.DeleteMessageAsync(0);
        await client.DisconnectAsync(quit: true);
        return count;
    }

    private static async Task<byte[]> RetrieveRawAsync(Pop3Client client, int index)
    {
        using var stream = await client.GetStreamAsync(index);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task New_mail_reaches_the_index_and_the_cache_in_the_background_without_a_login()
    {
        var edge = NewEdge(_spool.Runtime, Options(_state));
        edge.Start();
        var first = await PutAsync("one");
        var second = await PutAsync("two", bodyBytes: 300_000);
        var index = edge.Mirror.IndexOf("alice");
        var cache = edge.Mirror.Cache!;

        await WaitForAsync(() => index.Snapshot.Count == 2 && cache.Count == 2, "the background sync and prefetch");
        Assert.Equal([first.MessageKey, second.MessageKey], index.Snapshot.Select(e => e.MessageKey));
        Assert.Equal(first.RawLength + second.RawLength, cache.Bytes);
        Assert.Equal(2, Directory.EnumerateFiles(Path.Combine(_state, "cache"), "*.eml", SearchOption.AllDirectories).Count());

        // Served from the cache: the blob can go, the bytes still come (they were checked against the hash when cached).
        await _spool.Runtime.Storage.Spool.GetBlobClient(second.BlobName).DeleteAsync();
        using var client = await ConnectAsync(await ServeAsync(edge), "alice");
        Assert.Equal(2, client.Count);
        Assert.Equal("two", (await client.GetMessageAsync(1)).Subject);
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task The_cache_stays_within_its_size_evicting_the_least_recently_used_and_streams_large_messages_uncached()
    {
        var small = new List<SpoolMessage>();
        for (var i = 0; i < 12; i++)
            small.Add(await PutAsync("small " + i, bodyBytes: 10_000));
        var large = await PutAsync("large", bodyBytes: 40_000);
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions
        {
            StateDirectory = _state,
            CacheBytes = 100_000,
            Prefetch = false,
        });
        var cache = edge.Mirror.Cache!;
        using var client = await ConnectAsync(await ServeAsync(edge), "alice");
        Assert.Equal("small 0", (await client.GetMessageAsync(0)).Subject);
        for (var i = 1; i < 12; i++)
        {
            Assert.Equal("small " + i, (await client.GetMessageAsync(i)).Subject);
            Assert.Equal("small 0", (await client.GetMessageAsync(0)).Subject); // keeps the first one in use
            Assert.True(cache.Bytes <= 100_000, $"the cache holds {cache.Bytes} bytes");
        }
        var index = edge.Mirror.IndexOf("alice").Snapshot;
        Assert.True(cache.Contains(index[0]));
        Assert.True(cache.Contains(index[11]));
        Assert.False(cache.Contains(index[1]));
        Assert.Equal(Directory.EnumerateFiles(Path.Combine(_state, "cache"), "*.eml", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length), cache.Bytes);

        // More than a quarter of the cache: streamed from Blob, not cached.
        Assert.Equal("large", (await client.GetMessageAsync(12)).Subject);
        Assert.False(cache.Contains(index[12]));
        Assert.Equal(large.MessageKey, index[12].MessageKey);
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task A_restart_reads_the_index_from_disk_and_lists_only_what_is_new()
    {
        for (var i = 0; i < 5; i++)
            await PutAsync("old " + i);
        var firstEdge = NewEdge(_spool.Runtime, Options(_state, lookback: TimeSpan.Zero));
        using (var client = await ConnectAsync(await ServeAsync(firstEdge), "alice"))
        {
            Assert.Equal(5, client.Count);
            await client.DisconnectAsync(quit: true);
        }
        await firstEdge.DisposeAsync();
        Assert.True(File.Exists(Path.Combine(_state, "index", "alice.idx")));

        var added = await PutAsync("new");
        var counting = new CountingReader(_spool.Runtime.SpoolReader);
        var edge = NewEdge(_spool.Runtime, Options(_state, lookback: TimeSpan.Zero), counting);
        Assert.True(edge.Mirror.IndexOf("alice").LoadedFromDisk);
        using (var client = await ConnectAsync(await ServeAsync(edge), "alice"))
        {
            Assert.Equal(6, client.Count);
            Assert.Equal("new", (await client.GetMessageAsync(5)).Subject);
            await client.DisconnectAsync(quit: true);
        }
        // One range query from the last key on disk, which found only the new message.
        var listing = Assert.Single(counting.Listings);
        Assert.NotNull(listing.AfterKey);
        Assert.Equal(1, listing.Rows);
        Assert.Equal(added.MessageKey, edge.Mirror.IndexOf("alice").Snapshot[^1].MessageKey);
    }

    [Fact]
    public async Task Syncs_skip_their_queries_until_a_commit_or_a_removal_changes_the_mailbox()
    {
        var first = await PutAsync("one");
        var counting = new CountingReader(_spool.Runtime.SpoolReader);
        var index = NewEdge(_spool.Runtime, Options(_state), counting).Mirror.IndexOf("alice");
        async Task<int> SyncAsync()
        {
            await index.SyncAsync(counting, TimeSpan.FromMinutes(5), full: false, CancellationToken.None);
            return counting.Listings.Count;
        }

        Assert.Equal(1, await SyncAsync());
        Assert.Equal(1, await SyncAsync()); // nothing committed since: the change token alone answers
        Assert.Equal(1, await SyncAsync());

        var second = await PutAsync("two");
        Assert.Equal(2, await SyncAsync());
        Assert.Equal([first.MessageKey, second.MessageKey], index.Snapshot.Select(e => e.MessageKey));
        Assert.Equal(2, await SyncAsync());

        // Retention's removal changes the token in its own transaction.
        await new AzureSpoolMaintenance(_spool.Runtime.Storage, (AzureSpool)_spool.Runtime.Spool).RemoveAsync(first, CancellationToken.None);
        Assert.Equal(3, await SyncAsync());
        Assert.Equal([second.MessageKey], index.Snapshot.Select(e => e.MessageKey));

        // A full comparison always lists.
        await index.SyncAsync(counting, TimeSpan.FromMinutes(5), full: true, CancellationToken.None);
        Assert.Equal(4, counting.Listings.Count);
    }

    [Fact]
    public async Task A_torn_or_corrupt_index_file_is_rebuilt_from_storage()
    {
        await PutAsync("one");
        await PutAsync("two");
        var path = Path.Combine(_state, "index", "alice.idx");
        var edge = NewEdge(_spool.Runtime, Options(_state));
        await edge.Mirror.SnapshotForLoginAsync("alice", CancellationToken.None);
        await edge.DisposeAsync();

        // A crash while appending leaves half a line: the whole lines stay good.
        await File.AppendAllTextAsync(path, "+\tm:0000");
        var reloaded = NewEdge(_spool.Runtime, Options(_state)).Mirror.IndexOf("alice");
        Assert.True(reloaded.LoadedFromDisk);
        Assert.Equal(2, reloaded.Snapshot.Count);
        await _cleanup[^1].DisposeAsync();
        _cleanup.RemoveAt(_cleanup.Count - 1);

        // Garbage is not trusted: the index starts empty and is listed again.
        await File.WriteAllTextAsync(path, "cloudspool-index\t2\talice\nnonsense\n");
        var rebuilt = NewEdge(_spool.Runtime, Options(_state)).Mirror;
        Assert.False(rebuilt.IndexOf("alice").LoadedFromDisk);
        Assert.Equal(2, (await rebuilt.SnapshotForLoginAsync("alice", CancellationToken.None)).Count);
    }

    [Fact]
    public async Task Metadata_committed_out_of_order_is_found_within_the_lookback_and_by_the_full_listing()
    {
        var late = new AzureSpool(_spool.Runtime.Storage, new ManualClock(DateTimeOffset.UtcNow.AddSeconds(-60)));
        await PutAsync("on time");
        var withLookback = NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a"))).Mirror;
        var without = NewEdge(_spool.Runtime, Options(Path.Combine(_state, "b"), lookback: TimeSpan.Zero)).Mirror;
        Assert.Single(await withLookback.SnapshotForLoginAsync("alice", CancellationToken.None));
        Assert.Single(await without.SnapshotForLoginAsync("alice", CancellationToken.None));

        // Another writer (clock a minute behind) commits a message whose key sorts before the newest one.
        var straggler = await SpoolWriter.PutAsync(late, _spool.Runtime.SpoolReader, "alice", TestMail.Create("straggler"));
        Assert.True(string.CompareOrdinal(straggler.MessageKey, withLookback.IndexOf("alice").Snapshot[0].MessageKey) < 0);

        Assert.Equal(2, (await withLookback.SnapshotForLoginAsync("alice", CancellationToken.None)).Count);
        Assert.Equal(straggler.MessageKey, withLookback.IndexOf("alice").Snapshot[0].MessageKey);
        Assert.Single(await without.SnapshotForLoginAsync("alice", CancellationToken.None));
        await without.IndexOf("alice").SyncAsync(_spool.Runtime.SpoolReader, TimeSpan.Zero, full: true, CancellationToken.None);
        Assert.Equal(2, without.IndexOf("alice").Snapshot.Count);
    }

    [Fact]
    public async Task Messages_removed_by_retention_leave_the_index_and_its_file()
    {
        var oldest = await PutAsync("oldest");
        await PutAsync("middle");
        await PutAsync("newest");
        var edge = NewEdge(_spool.Runtime, Options(_state));
        Assert.Equal(3, (await edge.Mirror.SnapshotForLoginAsync("alice", CancellationToken.None)).Count);

        await new AzureSpoolMaintenance(_spool.Runtime.Storage, (AzureSpool)_spool.Runtime.Spool).RemoveAsync(oldest, CancellationToken.None);
        var after = await edge.Mirror.SnapshotForLoginAsync("alice", CancellationToken.None);
        Assert.Equal(["middle", "newest"], await SubjectsAsync(after));
        await edge.DisposeAsync();

        var reloaded = NewEdge(_spool.Runtime, Options(_state)).Mirror.IndexOf("alice");
        Assert.Equal(after.Select(e => e.MessageKey), reloaded.Snapshot.Select(e => e.MessageKey));
    }

    [Fact]
    public async Task Hidden_markers_of_messages_retention_removed_are_swept_at_the_next_login()
    {
        var oldest = await PutAsync("oldest");
        var kept = await PutAsync("kept");
        var edge = NewEdge(_spool.Runtime, Options(_state));
        var port = await ServeAsync(edge);
        using (var client = await ConnectAsync(port, "alice"))
        {
            await client.DeleteMessageAsync(0);
            await client.DeleteMessageAsync(1);
            await client.DisconnectAsync(quit: true);
        }
        await WaitForAsync(() => edge.Maildrops.OpenSessions == 0, "the session to end");
        var views = _spool.Runtime.ClientViews;
        Assert.Equal(2, (await views.ListHiddenAsync("alice", "alice", CancellationToken.None)).Count);

        await new AzureSpoolMaintenance(_spool.Runtime.Storage, (AzureSpool)_spool.Runtime.Spool).RemoveAsync(oldest, CancellationToken.None);
        using (var client = await ConnectAsync(port, "alice"))
        {
            Assert.Equal(0, client.Count);
            await client.DisconnectAsync(quit: true);
        }
        var deadline = DateTime.UtcNow + Bound;
        while ((await views.ListHiddenAsync("alice", "alice", CancellationToken.None)).Count != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the marker of the removed message was not swept");
            await Task.Delay(100);
        }
        Assert.Equal([kept.MessageKey], await views.ListHiddenAsync("alice", "alice", CancellationToken.None));
    }

    private async Task<List<string?>> SubjectsAsync(IEnumerable<SpoolIndexEntry> entries)
    {
        var subjects = new List<string?>();
        foreach (var e in entries)
            subjects.Add((await _spool.Runtime.SpoolReader.GetAsync("alice", e.MessageKey, CancellationToken.None))!.Summary.Subject);
        return subjects;
    }

    [Fact]
    public async Task A_blob_whose_bytes_differ_from_what_ingest_recorded_is_refused_and_the_rest_is_served()
    {
        await PutAsync("good");
        var bad = await PutAsync("tampered");
        var raw = TestMail.Create("tampered");
        raw[^3] ^= 0x20; // same length, other bytes
        await _spool.Runtime.Storage.Spool.GetBlobClient(bad.BlobName).UploadAsync(new BinaryData(raw), overwrite: true);

        var edge = NewEdge(_spool.Runtime, Options(_state, prefetch: false));
        using var client = await ConnectAsync(await ServeAsync(edge), "alice");
        var error = await Assert.ThrowsAsync<Pop3CommandException>(() => client.GetMessageAsync(1));
        Assert.Contains("SYS/TEMP", error.StatusText + " " + error.Message, StringComparison.Ordinal);
        Assert.Equal("good", (await client.GetMessageAsync(0)).Subject);
        Assert.Equal(1, edge.Mirror.Cache!.Count);
        await client.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task A_new_login_on_another_edge_takes_over_and_the_superseded_session_applies_nothing()
    {
        await PutAsync("one");
        await PutAsync("two");
        await using var other = await PullHarness.AttachAsync(_spool);
        var edgeA = NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a")));
        var portA = await ServeAsync(edgeA);
        var portB = await ServeAsync(NewEdge(other.Runtime, Options(Path.Combine(_state, "b"))));

        // alice on edge A marks message 1 and is taken over from edge B before she sends QUIT: her QUIT fails on the
        // view's claim and hides nothing. alice+phone on edge A is idle: edge A sees its session lease broken and ends it.
        var onA = await RawPop3Client.LogInAsync(portA, "alice", "secret");
        var idleOnA = await RawPop3Client.LogInAsync(portA, "alice+phone", "secret");
        Assert.StartsWith("+OK", await onA.CommandAsync("DELE 1"));
        using (var onB = await ConnectAsync(portB, "alice"))
        {
            Assert.Equal(2, onB.Count);
            Assert.StartsWith("-ERR", await onA.CommandAsync("QUIT"));
            await onB.DisconnectAsync(quit: true);
        }
        using (var phoneOnB = await ConnectAsync(portB, "alice+phone"))
        {
            Assert.Equal(2, phoneOnB.Count);
            await phoneOnB.DisconnectAsync(quit: true);
        }
        Assert.StartsWith("-ERR [IN-USE]", await idleOnA.ReadToEndAsync());
        await WaitForAsync(() => edgeA.Maildrops.OpenSessions == 0, "edge A to let go of both sessions");
        Assert.Empty(await _spool.Runtime.ClientViews.ListHiddenAsync("alice", "alice", CancellationToken.None));

        using var again = await ConnectAsync(portA, "alice");
        Assert.Equal(2, again.Count);
        await again.DisconnectAsync(quit: true);
        await onA.DisposeAsync();
        await idleOnA.DisposeAsync();
    }

    [Fact]
    public async Task A_login_is_answered_before_its_session_lease_is_settled_and_the_lease_is_held_until_quit()
    {
        await PutAsync("one");
        var held = new HeldLeases(_spool.Runtime.Leases);
        var port = await ServeAsync(NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a")), leases: held));
        const string lease = "pop3/alice/alice";

        // The lease's storage request is held back: the claim fences the session, so the login is answered without it.
        var session = await RawPop3Client.LogInAsync(port, "alice", "secret").WaitAsync(Bound);
        Assert.Equal(1, held.Asked);
        Assert.StartsWith("+OK 1 ", await session.CommandAsync("STAT"));

        held.Release.SetResult();
        await held.Answered.Task.WaitAsync(Bound);
        Assert.Null(await _spool.Runtime.Leases.TryAcquireAsync(lease, CancellationToken.None));
        // Let go of before QUIT is answered, as a lease taken before the answer to PASS was.
        Assert.StartsWith("+OK", await session.CommandAsync("QUIT"));
        await using var free = await _spool.Runtime.Leases.TryAcquireAsync(lease, CancellationToken.None);
        Assert.NotNull(free);
        await session.DisposeAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_login_waits_for_a_session_applying_its_quit_and_sees_its_deletions(bool onAnotherEdge)
    {
        await PutAsync("one");
        await PutAsync("two");
        var gated = new CountingViews(_spool.Runtime.ClientViews) { CommitGate = new(TaskCreationOptions.RunContinuationsAsynchronously) };
        var portA = await ServeAsync(NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a")), views: gated));
        await using var other = await PullHarness.AttachAsync(_spool);
        var portB = onAnotherEdge ? await ServeAsync(NewEdge(other.Runtime, Options(Path.Combine(_state, "b")))) : portA;

        var quitting = await RawPop3Client.LogInAsync(portA, "alice", "secret");
        Assert.StartsWith("+OK", await quitting.CommandAsync("DELE 1"));
        var quit = quitting.CommandAsync("QUIT");
        await gated.CommitHeld.Task.WaitAsync(Bound);
        var login = ConnectAsync(portB, "alice");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(login.IsCompleted, "the new login did not wait for the QUIT being applied");

        gated.CommitGate.SetResult();
        Assert.StartsWith("+OK", await quit);
        using var after = await login;
        Assert.Equal(1, after.Count);
        Assert.Equal("two", (await after.GetMessageAsync(0)).Subject);
        await after.DisconnectAsync(quit: true);
        await quitting.DisposeAsync();
    }

    [Fact]
    public async Task A_quit_applied_on_another_edge_just_before_a_login_reads_the_claim_is_seen_by_that_login()
    {
        await PutAsync("one");
        await PutAsync("two");
        var views = new CountingViews(_spool.Runtime.ClientViews);
        var portA = await ServeAsync(NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a")), views: views));
        await using var other = await PullHarness.AttachAsync(_spool);
        var portB = await ServeAsync(NewEdge(other.Runtime, Options(Path.Combine(_state, "b"))));
        // Edge A holds alice's view as listed now (nothing hidden) with the change token of now.
        using (var first = await ConnectAsync(portA, "alice"))
        {
            Assert.Equal(2, first.Count);
            await first.DisconnectAsync(quit: true);
        }

        // alice deletes message 1 on edge B. A login on edge A is held just before it reads the view's claim, and the
        // QUIT on B is applied then: the login must see the view as changed (its token read after the claim it makes),
        // not the copy edge A listed before, which still shows message 1.
        var onB = await RawPop3Client.LogInAsync(portB, "alice", "secret");
        Assert.StartsWith("+OK", await onB.CommandAsync("DELE 1"));
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        views.BeforeClaimRead = async () =>
        {
            held.TrySetResult();
            await release.Task;
        };
        var login = ConnectAsync(portA, "alice");
        await held.Task.WaitAsync(Bound);
        Assert.StartsWith("+OK", await onB.CommandAsync("QUIT"));
        views.BeforeClaimRead = null;
        release.SetResult();

        using var after = await login;
        Assert.Equal(1, after.Count);
        Assert.Equal("two", (await after.GetMessageAsync(0)).Subject);
        await after.DisconnectAsync(quit: true);
        await onB.DisposeAsync();
    }

    [Fact]
    public async Task A_client_polling_through_one_edge_claims_its_view_without_reading_the_claim_until_it_changed()
    {
        var (counting, portA, portB, other) = await ThreeMessagesOnTwoEdgesAsync();
        await using var _ = other;
        Task<int> PollLaptopAsync(int port, bool deleteFirst = false) => PollAsync(port, "alice+laptop", deleteFirst);

        Assert.Equal(3, await PollLaptopAsync(portA));
        Assert.Equal(1, counting.ClaimReads);
        Assert.Equal(1, counting.TokenReads("alice+laptop"));
        // The last session here ended without writing to the claim: the next logins claim on the row it left, and as
        // the claim succeeds, the view is unchanged: its token is not read either.
        Assert.Equal(3, await PollLaptopAsync(portA));
        Assert.Equal(3, await PollLaptopAsync(portA, deleteFirst: true));
        Assert.Equal(1, counting.ClaimReads);
        Assert.Equal(1, counting.TokenReads("alice+laptop"));
        // That session wrote its deletion: the next login reads the claim again, and sees the deletion.
        Assert.Equal(2, await PollLaptopAsync(portA));
        Assert.Equal(2, counting.ClaimReads);
        Assert.Equal(2, counting.TokenReads("alice+laptop"));

        // Another edge claims the view and deletes: the claim on the row as left here fails, the row is read, and the
        // deletion made there is seen here.
        Assert.Equal(2, await PollLaptopAsync(portB, deleteFirst: true));
        Assert.Equal(1, await PollLaptopAsync(portA));
        Assert.Equal(3, counting.ClaimReads);
        Assert.Equal(3, counting.TokenReads("alice+laptop"));
        Assert.Equal(1, await PollLaptopAsync(portA));
        Assert.Equal(3, counting.ClaimReads);
        Assert.Equal(3, counting.TokenReads("alice+laptop"));
    }

    [Fact]
    public async Task A_deletion_applied_without_a_claim_is_seen_by_a_client_polling_through_another_edge()
    {
        var (counting, portA, _, other) = await ThreeMessagesOnTwoEdgesAsync();
        await using var _ = other;
        var unclaimable = new CountingViews(other.Runtime.ClientViews) { ClaimFailure = new InvalidOperationException("the claim is refused in this test") };
        var portC = await ServeAsync(NewEdge(other.Runtime, Options(Path.Combine(_state, "c")), views: unclaimable));

        Assert.Equal(3, await PollAsync(portA, "alice+laptop"));
        Assert.Equal(3, await PollAsync(portA, "alice+laptop"));
        Assert.Equal(1, counting.ClaimReads);
        // Edge C cannot claim the view (as when storage did not answer at the login): the session goes on under that
        // edge's own rule, and its QUIT hides the message without a fence. That moves the view's claim, so edge A's
        // claim on the row as its last session left it fails, and the view is read again.
        Assert.Equal(3, await PollAsync(portC, "alice+laptop", deleteFirst: true));
        Assert.Equal(2, await PollAsync(portA, "alice+laptop"));
        Assert.Equal(2, counting.ClaimReads);
        Assert.Equal(2, await PollAsync(portA, "alice+laptop"));
        Assert.Equal(2, counting.ClaimReads);
    }

    [Fact]
    public async Task A_login_lists_a_view_again_only_when_it_changed_on_this_edge_or_another()
    {
        var (counting, portA, portB, other) = await ThreeMessagesOnTwoEdgesAsync();
        await using var _ = other;
        Task<int> CountAsync(int port, bool deleteFirst = false) => PollAsync(port, "alice+laptop", deleteFirst);

        Assert.Equal(3, await CountAsync(portA));
        Assert.Equal(2, counting.Listings); // its own view and the mailbox's shared one
        Assert.Equal(3, await CountAsync(portA));
        Assert.Equal(2, counting.Listings); // unchanged: the change tokens answered

        // The same client identity deletes through another edge: edge A's copy is stale and must not be used.
        Assert.Equal(3, await CountAsync(portB, deleteFirst: true));
        Assert.Equal(2, await CountAsync(portA));
        Assert.Equal(3, counting.Listings);

        // Deleting through edge A itself: the next login there sees it hidden too.
        Assert.Equal(2, await CountAsync(portA, deleteFirst: true));
        Assert.Equal(1, await CountAsync(portA));
        Assert.Equal(1, await CountAsync(portB));
        Assert.Equal(1, await CountAsync(portA));
    }

    [Fact]
    public async Task Every_login_reads_its_user_the_same_way_known_or_not_and_an_unknown_one_checks_a_decoy_of_the_same_cost()
    {
        await PutAsync("one");
        var users = new CountingUsers(_spool.Runtime.Pop3Users);
        // A long interval: the listing made at start stays the one in use (and fresh) for the whole test.
        var edge = NewEdge(_spool.Runtime, new SpoolEdgeOptions { StateDirectory = _state, SyncInterval = TimeSpan.FromSeconds(60) }, users: users);
        edge.Start();
        await WaitForAsync(() => edge.Mirror.TryGetListedUser("alice", out var listed) && listed is not null, "the background listing of the users");
        var port = await ServeAsync(edge);
        for (var i = 0; i < 3; i++)
        {
            using var client = await ConnectAsync(port, "alice");
            Assert.Equal(1, client.Count);
            await client.DisconnectAsync(quit: true);
        }
        // One storage read per login even though the listing has alice: a listed name answers no faster than another.
        Assert.Equal(3, users.Gets);

        // A wrong password of a known user and any password of an unknown one: the same one read each, and a check.
        foreach (var (login, expectedGets) in new[] { ("alice", 4), ("mallory", 5), ("alice+laptop", 6), ("mallory+x", 7) })
        {
            var (refused, answer) = await Pop3Raw.LoginAsync(port, login, "wrong");
            using (refused)
                Assert.StartsWith("-ERR [AUTH]", answer);
            Assert.Equal(expectedGets, users.Gets);
        }
        // The decoy is a hash of the same hasher with the same parameters (format, PRF, iterations, salt length).
        Assert.Equal(Convert.FromBase64String(Pop3Passwords.Hash("x"))[..13], Convert.FromBase64String(Pop3Passwords.Decoy)[..13]);

        // Added after the listing: read like any other, so it can log in at once.
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("bob", "alice", Pop3Passwords.Hash("bobs")), CancellationToken.None));
        using (var bob = await ConnectAsync(port, "bob", "bobs"))
            await bob.DisconnectAsync(quit: true);
        Assert.Equal(8, users.Gets);

        // Removed: refused at its next login, the listing notwithstanding.
        Assert.True(await _spool.Runtime.Pop3Users.RemoveAsync("alice", CancellationToken.None));
        Assert.True(edge.Mirror.TryGetListedUser("alice", out var stillListed) && stillListed is not null);
        var (gone, goneAnswer) = await Pop3Raw.LoginAsync(port, "alice", "secret");
        using (gone)
            Assert.StartsWith("-ERR", goneAnswer);
    }

    [Fact]
    public async Task A_shared_delete_mailbox_hides_a_deleted_message_from_every_client_and_admits_one_identity_at_a_time()
    {
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("fam", "family", Pop3Passwords.Hash("secret")), CancellationToken.None));
        await PutAsync("for everyone", mailbox: "family");
        await PutAsync("read by one", mailbox: "family");
        var edge = NewEdge(_spool.Runtime, Options(_state, shared: "family"));
        var port = await ServeAsync(edge);

        // One session at a time per shared-delete mailbox: another identity is refused, the same one takes over.
        var earlier = await RawPop3Client.LogInAsync(port, "fam+desktop", "secret");
        Assert.StartsWith("+OK", await earlier.CommandAsync("DELE 1"));
        var (refused, answer) = await Pop3Raw.LoginAsync(port, "fam+laptop", "secret");
        using (refused)
            Assert.StartsWith("-ERR [IN-USE]", answer);
        using (var desktop = await ConnectAsync(port, "fam+desktop"))
        {
            Assert.StartsWith("-ERR [IN-USE]", await earlier.ReadToEndAsync());
            Assert.Equal(2, desktop.Count);
            await desktop.DeleteMessageAsync(1);
            await desktop.DisconnectAsync(quit: true);
        }
        await earlier.DisposeAsync();
        await WaitForAsync(() => edge.Maildrops.OpenSessions == 0, "the desktop's session to end");
        using var laptop = await ConnectAsync(port, "fam+laptop");
        Assert.Equal(1, laptop.Count);
        Assert.Equal("for everyone", (await laptop.GetMessageAsync(0)).Subject);
        await laptop.DisconnectAsync(quit: true);
    }

    [Fact]
    public async Task A_shared_delete_session_whose_take_over_fails_stays_fenced_and_a_newer_login_voids_its_deletions()
    {
        Assert.True(await _spool.Runtime.Pop3Users.AddAsync(new Pop3User("fam", "family", Pop3Passwords.Hash("secret")), CancellationToken.None));
        await PutAsync("one", mailbox: "family");
        await PutAsync("two", mailbox: "family");
        await using var other = await PullHarness.AttachAsync(_spool);
        var portA = await ServeAsync(NewEdge(_spool.Runtime, Options(Path.Combine(_state, "a"), shared: "family")));
        var refusing = new RefusedTakeOvers(other.Runtime.Leases);
        var portB = await ServeAsync(NewEdge(other.Runtime, Options(Path.Combine(_state, "b"), shared: "family"), leases: refusing));

        // The desktop's session on edge A holds the mailbox's lease; its next login, on edge B, claims the mailbox, but
        // storage refuses to break the lease: the session is served, fenced by its claim.
        var onA = await RawPop3Client.LogInAsync(portA, "fam+desktop", "secret");
        var onB = await RawPop3Client.LogInAsync(portB, "fam+desktop", "secret");
        await WaitForAsync(() => refusing.Refused > 0, "edge B to try to take the lease over");
        Assert.StartsWith("+OK", await onB.CommandAsync("DELE 1"));

        // A newer login claims the mailbox again: the session on edge B was superseded, and its QUIT hides nothing.
        using (var newer = await ConnectAsync(portA, "fam+desktop"))
        {
            Assert.Equal(2, newer.Count);
            Assert.StartsWith("-ERR", await onB.CommandAsync("QUIT"));
            await newer.DisconnectAsync(quit: true);
        }
        Assert.Empty(await _spool.Runtime.ClientViews.ListHiddenAsync("family", "*", CancellationToken.None));
        using var last = await ConnectAsync(portA, "fam+desktop");
        Assert.Equal(2, last.Count);
        await last.DisconnectAsync(quit: true);
        await onA.DisposeAsync();
        await onB.DisposeAsync();
    }

    [Fact]
    public async Task Cached_mail_stays_readable_while_storage_is_down_and_only_uncached_retr_fails()
    {
        var location = Directory.CreateTempSubdirectory("cloudspool-test-azurite-").FullName;
        var azurite = await EmbeddedAzurite.StartPrivateAsync(location, NullLogger.Instance, CancellationToken.None);
        var stopped = false;
        try
        {
            var options = new CloudSpoolOptions { Storage = new StorageOptions { ConnectionString = azurite.ConnectionString } };
            await using var runtime = await Runtime.StartAsync(options, NullLoggerFactory.Instance, CancellationToken.None);
            Assert.True(await runtime.Pop3Users.AddAsync(new Pop3User("bob", "bob", Pop3Passwords.Hash("secret")), CancellationToken.None));
            var raws = new[] { TestMail.Create("cached one"), TestMail.Create("never read"), TestMail.Create("cached big", bodyBytes: 2_000_000) };
            foreach (var raw in raws)
                await SpoolWriter.PutAsync(runtime.Spool, runtime.SpoolReader, "bob", raw);
            var edge = NewEdge(runtime, Options(_state, prefetch: false));
            var port = await ServeAsync(edge);
            using (var client = await ConnectAsync(port, "bob"))
            {
                Assert.Equal(raws[0], await RetrieveRawAsync(client, 0));
                Assert.Equal(raws[2], await RetrieveRawAsync(client, 2));
                await client.DisconnectAsync(quit: true);
            }
            await WaitForAsync(() => edge.Maildrops.OpenSessions == 0, "the first session to end");

            await azurite.DisposeAsync();
            stopped = true;

            using (var client = await ConnectAsync(port, "bob"))
            {
                Assert.Equal(3, client.Count);
                Assert.Equal(raws.Select(r => (int)r.Length), await client.GetMessageSizesAsync());
                Assert.Equal(raws[0], await RetrieveRawAsync(client, 0));
                Assert.Equal(raws[2], await RetrieveRawAsync(client, 2));
                var error = await Assert.ThrowsAsync<Pop3CommandException>(() => client.GetMessageAsync(1));
                Assert.Contains("SYS/TEMP", error.StatusText + " " + error.Message, StringComparison.Ordinal);
                await client.NoOpAsync();
                await client.DisconnectAsync(quit: true);
            }

            // An identity whose view was never read cannot be shown its mail safely (it may have deleted some): refused for now.
            var (refused, answer) = await Pop3Raw.LoginAsync(port, "bob+new", "secret");
            using (refused)
                Assert.StartsWith("-ERR [SYS/TEMP]", answer);
        }
        finally
        {
            if (!stopped)
                await azurite.DisposeAsync();
            Directory.Delete(location, recursive: true);
        }
    }

    /// <summary>Passes through to the real user store and counts the reads of one user.</summary>
    private sealed class CountingUsers(IPop3UserStore inner) : IPop3UserStore
    {
        private int _gets;

        public int Gets => Volatile.Read(ref _gets);

        public Task<Pop3User?> GetAsync(string name, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _gets);
            return inner.GetAsync(name, cancellationToken);
        }

        public Task<IReadOnlyList<Pop3User>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
        public Task<bool> AddAsync(Pop3User user, CancellationToken cancellationToken) => inner.AddAsync(user, cancellationToken);
        public Task<bool> UpdateAsync(Pop3User user, CancellationToken cancellationToken) => inner.UpdateAsync(user, cancellationToken);
        public Task<bool> RemoveAsync(string name, CancellationToken cancellationToken) => inner.RemoveAsync(name, cancellationToken);
    }

    /// <summary>Passes through to the real lease manager; the answers to TryAcquireAsync wait for <see cref="Release"/>.</summary>
    private sealed class HeldLeases(ILeaseManager inner) : ILeaseManager
    {
        private int _asked;

        public int Asked => Volatile.Read(ref _asked);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Answered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<ILease?> TryAcquireAsync(string name, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _asked);
            await Release.Task.WaitAsync(cancellationToken);
            var lease = await inner.TryAcquireAsync(name, cancellationToken);
            Answered.TrySetResult();
            return lease;
        }

        public Task<ILease?> TakeOverAsync(string name, CancellationToken cancellationToken) => inner.TakeOverAsync(name, cancellationToken);
    }

    /// <summary>Passes through to the real lease manager, except that every take-over fails as storage refusing it would.</summary>
    private sealed class RefusedTakeOvers(ILeaseManager inner) : ILeaseManager
    {
        private int _refused;

        public int Refused => Volatile.Read(ref _refused);

        public Task<ILease?> TryAcquireAsync(string name, CancellationToken cancellationToken) => inner.TryAcquireAsync(name, cancellationToken);

        public Task<ILease?> TakeOverAsync(string name, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _refused);
            throw new InvalidOperationException("storage refused to break the lease (test)");
        }
    }

    /// <summary>Passes through to the real view store and counts the listings of hidden keys.</summary>
    private sealed class CountingViews(IClientViewStore inner) : IClientViewStore
    {
        private int _listings;
        private int _claimReads;

        public int Listings => Volatile.Read(ref _listings);

        public int ClaimReads => Volatile.Read(ref _claimReads);

        public Task<IReadOnlySet<string>> ListHiddenAsync(string mailbox, string client, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _listings);
            return inner.ListHiddenAsync(mailbox, client, cancellationToken);
        }

        public Task HideAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken) =>
            inner.HideAsync(mailbox, client, messageKeys, cancellationToken);

        public Task ForgetAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken) =>
            inner.ForgetAsync(mailbox, client, messageKeys, cancellationToken);

        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _tokenReads = new();

        /// <summary>How many times the change token of the view was read.</summary>
        public int TokenReads(string view) => _tokenReads.GetValueOrDefault(view);

        public Task<string?> ChangeTokenAsync(string mailbox, string client, CancellationToken cancellationToken)
        {
            _tokenReads.AddOrUpdate(client, 1, (_, n) => n + 1);
            return inner.ChangeTokenAsync(mailbox, client, cancellationToken);
        }

        public async Task<ViewClaim> ReadClaimAsync(string mailbox, string view, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _claimReads);
            if (BeforeClaimRead is { } before)
                await before();
            return await inner.ReadClaimAsync(mailbox, view, cancellationToken);
        }

        /// <summary>Awaited (when set) before each read of a session claim: holds a login just before it reads the claim.</summary>
        public Func<Task>? BeforeClaimRead { get; set; }

        /// <summary>Thrown (when set) by every claim: a login that cannot claim its view.</summary>
        public Exception? ClaimFailure { get; set; }

        public Task<string?> ClaimAsync(string mailbox, string view, string client, ViewClaim seen, CancellationToken cancellationToken) =>
            ClaimFailure is { } failure ? Task.FromException<string?>(failure) : inner.ClaimAsync(mailbox, view, client, seen, cancellationToken);

        public Task<string?> BeginCommitAsync(string mailbox, string view, string fence, CancellationToken cancellationToken) =>
            inner.BeginCommitAsync(mailbox, view, fence, cancellationToken);

        /// <summary>Waits for <see cref="CommitGate"/> (when set) between marking the commit and applying it: a session held mid-QUIT.</summary>
        public async Task<bool> CommitHiddenAsync(string mailbox, string view, IReadOnlyCollection<string> messageKeys, string fence, CancellationToken cancellationToken)
        {
            if (CommitGate is { } gate)
            {
                CommitHeld.TrySetResult();
                await gate.Task.WaitAsync(cancellationToken);
            }
            return await inner.CommitHiddenAsync(mailbox, view, messageKeys, fence, cancellationToken);
        }

        public TaskCompletionSource? CommitGate { get; set; }

        public TaskCompletionSource CommitHeld { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>Passes through to the real spool and records each index listing: where it started and how many rows it read.</summary>
    private sealed class CountingReader(ISpoolReader inner) : ISpoolReader
    {
        public List<(string? AfterKey, int Rows)> Listings { get; } = [];

        public async IAsyncEnumerable<SpoolIndexEntry> ListIndexAsync(string mailbox, string? afterKey, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var rows = 0;
            await foreach (var e in inner.ListIndexAsync(mailbox, afterKey, cancellationToken))
            {
                rows++;
                yield return e;
            }
            lock (Listings)
                Listings.Add((afterKey, rows));
        }

        public Task<string?> FirstKeyAsync(string mailbox, CancellationToken cancellationToken) => inner.FirstKeyAsync(mailbox, cancellationToken);
        public Task<string?> ChangeTokenAsync(string mailbox, CancellationToken cancellationToken) => inner.ChangeTokenAsync(mailbox, cancellationToken);
        /// <summary>Every content read: blob, offset (null: the whole blob) and length.</summary>
        public List<(string Blob, long? Offset, long Length)> Reads { get; } = [];

        /// <summary>Whether any content read of the blob was asked for.</summary>
        public bool HasRead(string blobName)
        {
            lock (Reads)
                return Reads.Any(r => r.Blob == blobName);
        }

        /// <summary>Awaited before a content read of the blob is passed on (recorded first): a test holds a read with it.</summary>
        public Func<string, Task>? Before { get; set; }

        public async Task<Stream> OpenContentAsync(string blobName, long? offset, long length, CancellationToken cancellationToken)
        {
            lock (Reads)
                Reads.Add((blobName, offset, length));
            if (Before is { } before)
                await before(blobName).WaitAsync(cancellationToken);
            return await inner.OpenContentAsync(blobName, offset, length, cancellationToken);
        }

        public IAsyncEnumerable<SpoolMessage> ListAsync(string mailbox, string? afterKey, CancellationToken cancellationToken) => inner.ListAsync(mailbox, afterKey, cancellationToken);
        public Task<SpoolMessage?> GetAsync(string mailbox, string messageKey, CancellationToken cancellationToken) => inner.GetAsync(mailbox, messageKey, cancellationToken);
    }
}
