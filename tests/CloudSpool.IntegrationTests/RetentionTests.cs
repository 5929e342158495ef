using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>The retention job and its repair pass against a real Azurite (mail pulled from a real Dovecot).</summary>
public sealed class RetentionTests : DovecotAndSpoolTest
{
    /// <summary>Pulls one new message into the mailbox as if it had been ingested <paramref name="daysAgo"/> days ago.</summary>
    private async Task IngestAsync(string user, string mailbox, string subject, int daysAgo)
    {
        Dovecot.DeliverRaw(user, TestMail.Create(subject));
        var engine = Spool.EngineWith(new ManualClock(DateTimeOffset.UtcNow - TimeSpan.FromDays(daysAgo)));
        var run = await engine.RunAsync(PullHarness.Account(Dovecot, user, user, "pw", mailbox), new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);
        Assert.Equal((RunOutcome.Succeeded, 1), (run.Outcome, run.Stored));
    }

    [Fact]
    public async Task Retention_removes_old_mail_from_blob_and_table_together_and_keeps_the_rest()
    {
        Dovecot.AddUser("ret", "pw");
        Dovecot.AddUser("other", "pw");
        await IngestAsync("ret", "kept30", "ancient", daysAgo: 40);
        await IngestAsync("ret", "kept30", "recent", daysAgo: 10);
        await IngestAsync("other", "forever", "ancient elsewhere", daysAgo: 400);

        var run = await Spool.Runtime.Retention.RunAsync(new Dictionary<string, int> { ["kept30"] = 30, ["forever"] = 0 }, CancellationToken.None);

        Assert.Equal(RunOutcome.Succeeded, run.Outcome);
        Assert.Contains("kept30: 1 removed", run.Summary);
        Assert.Equal("recent", Assert.Single(await Spool.ListAsync("kept30")).Summary.Subject);
        Assert.Equal("ancient elsewhere", Assert.Single(await Spool.ListAsync("forever")).Summary.Subject);
        var checks = await Spool.Runtime.Retention.CheckAsync(["kept30", "forever"], fix: false, CancellationToken.None, TimeSpan.Zero);
        Assert.All(checks, c => Assert.True(c.Consistent, $"{c.Mailbox}: {string.Join(",", c.RowsWithoutBlob)} / {string.Join(",", c.BlobsWithoutRow)}"));
        Assert.Equal([1, 1], checks.Select(c => c.Blobs));
        Assert.Equal(run, Assert.Single(await Spool.Runtime.JobRuns.RecentAsync("retention", 5, CancellationToken.None)));
    }

    [Fact]
    public async Task Repair_reports_rows_without_blobs_and_blobs_without_rows_and_fix_deletes_the_orphans()
    {
        Dovecot.AddUser("rep", "pw");
        await IngestAsync("rep", "mixed", "one", daysAgo: 0);
        await IngestAsync("rep", "mixed", "two", daysAgo: 0);
        var messages = await Spool.ListAsync("mixed");
        // A crash of an ingest between blob and commit leaves a blob no row names; a lost blob leaves a row alone.
        await Spool.Runtime.Storage.Spool.GetBlobClient("mixed/ab/" + new string('a', 64) + ".eml").UploadAsync(BinaryData.FromString("orphan"));
        await Spool.Runtime.Storage.Spool.GetBlobClient(messages[1].BlobName).DeleteAsync();

        var check = Assert.Single(await Spool.Runtime.Retention.CheckAsync(["mixed"], fix: false, CancellationToken.None, TimeSpan.Zero));
        Assert.False(check.Consistent);
        Assert.Equal([messages[1].MessageKey], check.RowsWithoutBlob);
        Assert.Equal(["mixed/ab/" + new string('a', 64) + ".eml"], check.BlobsWithoutRow);

        var young = Assert.Single(await Spool.Runtime.Retention.CheckAsync(["mixed"], fix: true, CancellationToken.None));
        Assert.Equal(0, young.BlobsDeleted); // younger than the grace age: maybe an ingest still committing

        var fixedCheck = Assert.Single(await Spool.Runtime.Retention.CheckAsync(["mixed"], fix: true, CancellationToken.None, TimeSpan.Zero));
        Assert.Equal(1, fixedCheck.BlobsDeleted);
        var after = Assert.Single(await Spool.Runtime.Retention.CheckAsync(["mixed"], fix: false, CancellationToken.None, TimeSpan.Zero));
        Assert.Empty(after.BlobsWithoutRow);
        Assert.Equal([messages[1].MessageKey], after.RowsWithoutBlob); // reported, never silently dropped
        Assert.Equal(await Spool.ReadRawAsync(messages[0]), await Spool.ReadRawAsync(messages[0]));
    }

    [Fact]
    public async Task Job_run_retention_uses_the_configured_periods_and_repair_exits_non_zero_when_inconsistent()
    {
        Dovecot.AddUser("cli", "pw");
        await IngestAsync("cli", "box", "old", daysAgo: 100);
        var env = Spool.CliEnvironment(("CLOUDSPOOL__Retention__Mailboxes__box", "90"));

        var run = await CliProcess.RunAsync(env, "job", "run", "retention");
        Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
        Assert.Contains("retention: ok: box: 1 removed; repair check: 0 messages without their blob, 0 blobs without a message (0 deleted)", run.Stdout);
        Assert.Empty(await Spool.ListAsync("box"));

        var repair = await CliProcess.RunAsync(env, "job", "run", "retention", "--repair");
        Assert.True(repair.ExitCode == 0, repair.Stdout + repair.Stderr);
        Assert.Contains("box: 0 messages, 0 blobs: consistent", repair.Stdout);

        var bad = await CliProcess.RunAsync(Spool.CliEnvironment(("CLOUDSPOOL__Retention__Mailboxes__Bad Name", "-1")), "job", "run", "retention");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("Retention:Mailboxes", bad.Stderr);
    }

    [Fact]
    public async Task The_scheduled_run_reports_a_lost_blob_as_a_failure_and_the_check_can_be_switched_off()
    {
        Dovecot.AddUser("sched", "pw");
        await IngestAsync("sched", "kept", "one", daysAgo: 0);
        await IngestAsync("sched", "kept", "two", daysAgo: 0);
        var messages = await Spool.ListAsync("kept");
        await Spool.Runtime.Storage.Spool.GetBlobClient(messages[0].BlobName).DeleteAsync();
        var days = new Dictionary<string, int> { ["kept"] = 0 };

        var report = await Spool.Runtime.Retention.RunAsync(days, CancellationToken.None, CloudSpool.Core.Retention.RepairMode.Report);
        Assert.Equal(RunOutcome.Failed, report.Outcome);
        Assert.Contains("repair check: 1 messages without their blob, 0 blobs without a message", report.Summary);
        Assert.Contains(messages[0].MessageKey, report.Error);
        Assert.Equal(report, (await Spool.Runtime.JobRuns.RecentAsync("retention", 1, CancellationToken.None))[0]);

        var quiet = await Spool.Runtime.Retention.RunAsync(days, CancellationToken.None, CloudSpool.Core.Retention.RepairMode.Off);
        Assert.Equal((RunOutcome.Succeeded, "no mailbox has a retention period"), (quiet.Outcome, quiet.Summary));
    }

    [Fact]
    public async Task Retention_drops_the_markers_of_removed_mail_and_merges_a_view_that_an_edge_could_not()
    {
        // A phone reading through an edge on its SAS (which deletes nothing) leaves one record a QUIT, and the markers of
        // messages retention removed: the retention run, with the key, keeps that view small, every live key hidden.
        Dovecot.AddUser("views", "pw");
        await IngestAsync("views", "phone", "ancient", daysAgo: 40);
        await IngestAsync("views", "phone", "recent", daysAgo: 1);
        var (ancient, recent) = (await Spool.ListAsync("phone")) switch { var m => (m[0].MessageKey, m[1].MessageKey) };
        var views = Spool.Runtime.ClientViews;
        await views.HideAsync("phone", "me+phone", [ancient], CancellationToken.None);
        SpoolKeys.TryGetTicks(recent, out var ticks);
        // Keys after the recent message whatever its hash (a key of the same tick could sort before it).
        var later = Enumerable.Range(1, 40).Select(i => SpoolKeys.Message(ticks + i, new string('a', 64))).Prepend(recent).ToList();
        foreach (var key in later)
            await views.HideAsync("phone", "me+phone", [key], CancellationToken.None); // one QUIT each
        await views.HideAsync("phone", "*", [ancient, recent], CancellationToken.None);
        Assert.Equal(42, await ChunkRowsAsync("me+phone"));

        var run = await Spool.Runtime.Retention.RunAsync(new Dictionary<string, int> { ["phone"] = 30 }, CancellationToken.None);

        Assert.Equal(RunOutcome.Succeeded, run.Outcome);
        Assert.Contains("phone: 1 removed; views: 2 markers of removed messages dropped, 41 records merged", run.Summary);
        Assert.Equal(1, await ChunkRowsAsync("me+phone"));
        Assert.Equal(later.ToHashSet(), await views.ListHiddenAsync("phone", "me+phone", CancellationToken.None));
        Assert.Equal([recent], await views.ListHiddenAsync("phone", "*", CancellationToken.None));

        var again = await Spool.Runtime.Retention.RunAsync(new Dictionary<string, int> { ["phone"] = 30 }, CancellationToken.None);
        Assert.Equal("phone: 0 removed", again.Summary); // nothing left to do, nothing said
    }

    private async Task<int> ChunkRowsAsync(string view)
    {
        var filter = Azure.Data.Tables.TableClient.CreateQueryFilter($"PartitionKey eq {CloudSpool.Storage.Azure.StorageNames.ViewPartition("phone", view)}");
        var count = 0;
        await foreach (var e in Spool.Runtime.Storage.Views.QueryAsync<Azure.Data.Tables.TableEntity>(filter, select: ["RowKey"]))
            count += e.RowKey.StartsWith("c:", StringComparison.Ordinal) ? 1 : 0;
        return count;
    }
}
