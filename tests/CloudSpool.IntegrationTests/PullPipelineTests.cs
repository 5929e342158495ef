using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The pull's pipeline: a batch's metadata is committed while the next messages are fetched, and what the background
/// work does wrong still fails the run without losing or doubling anything. Real Dovecot, real Azurite; the spool is
/// watched (or made to fail one commit) by a wrapper around the real one.
/// </summary>
public sealed class PullPipelineTests : DovecotAndSpoolTest
{
    private const int Messages = 120;

    private void Deliver(string user)
    {
        Dovecot.AddUser(user, "pw");
        for (var i = 0; i < Messages; i++)
            Dovecot.DeliverRaw(user, TestMail.Create($"{user} {i}", bodyBytes: 500 + 37 * i));
    }

    // Every message on its own (no packs): commits are batches of up to 49 messages while the rest is still upstream.
    private PullEngine Engine(WatchedSpool watched) =>
        Spool.EngineWith(TimeProvider.System, o => o with { PackMessageBytes = 0 }, inner => watched.Wrap(inner));

    [Fact]
    public async Task A_batch_is_committed_while_the_next_messages_are_fetched_and_deleted_only_after_its_commit()
    {
        Deliver("overlap");
        var account = PullHarness.Account(Dovecot, "overlap", "overlap", "pw", "overlap") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        var watched = new WatchedSpool { HoldFirstCommitForWrite = true };

        var run = await Engine(watched).RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((RunOutcome.Succeeded, Messages, Messages), (run.Outcome, run.Stored, run.DeletedUpstream));
        // The first commit waited (up to 20 s) for the write of a message fetched after the commit began: it came.
        Assert.True(watched.WriteStartedDuringFirstCommit, "no message was fetched and written while the first batch was being committed");
        Assert.True(watched.Commits >= 3, $"{watched.Commits} commits");
        var stored = await Spool.ListAsync("overlap");
        Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"overlap {i}").Order(), stored.Select(m => m.Summary.Subject).Order());
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "overlap", "pw"));
        Assert.Empty(Directory.GetFiles(Spool.TempDirectory, "ingest-*"));
    }

    [Fact]
    public async Task A_commit_failing_in_the_background_fails_the_run_loses_nothing_and_the_next_run_stores_the_rest_once()
    {
        Deliver("refused");
        var account = PullHarness.Account(Dovecot, "refused", "refused", "pw", "refused") with { Leave = new LeavePolicy { DeleteWhenStored = true } };
        var watched = new WatchedSpool { FailCommit = 2 };

        var failed = await Engine(watched).RunAsync(account, new PullRunRequest { IgnoreBackoff = true }, CancellationToken.None);

        Assert.Equal((RunOutcome.Failed, UpstreamErrorKind.Storage), (failed.Outcome, failed.ErrorKind));
        Assert.Contains("could not commit", failed.Error, StringComparison.Ordinal);
        Assert.Contains("refused by the test", failed.Error, StringComparison.Ordinal);
        var first = await Spool.ListAsync("refused");
        Assert.Equal(failed.Stored, first.Count);
        Assert.InRange(first.Count, 1, Messages - 1); // the first batch (and what was written before the failure) is stored
        // The run failed, so no QUIT reached the server: nothing is deleted upstream (RFC 1939).
        Assert.Equal(Messages, await UpstreamProbe.CountAsync(Dovecot, "refused", "pw"));
        Assert.Empty(Directory.GetFiles(Spool.TempDirectory, "ingest-*"));

        var next = await Spool.PullAsync(account);

        Assert.Equal(RunOutcome.Succeeded, next.Outcome);
        Assert.Equal(Messages - first.Count, next.Stored);
        var stored = await Spool.ListAsync("refused");
        Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"refused {i}").Order(), stored.Select(m => m.Summary.Subject).Order());
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "refused", "pw"));
    }

    /// <summary>The real spool, watched: can hold its first commit until another message's write starts, or fail one commit.</summary>
    private sealed class WatchedSpool
    {
        private int _commits;
        private volatile TaskCompletionSource? _writeStarted;

        public bool HoldFirstCommitForWrite { get; init; }

        /// <summary>Which commit (1 = the first) throws, as storage refusing it would; 0 for none.</summary>
        public int FailCommit { get; init; }

        public int Commits => Volatile.Read(ref _commits);

        public bool WriteStartedDuringFirstCommit { get; private set; }

        public ISpool Wrap(ISpool inner) => new Wrapper(this, inner);

        private sealed class Wrapper(WatchedSpool watch, ISpool inner) : ISpool
        {
            public Task WriteContentAsync(string mailbox, IngestedMessage message, Stream content, CancellationToken cancellationToken)
            {
                watch._writeStarted?.TrySetResult();
                return inner.WriteContentAsync(mailbox, message, content, cancellationToken);
            }

            public Task<IReadOnlyList<PackSlot>> WritePackAsync(string mailbox, IReadOnlyList<(IngestedMessage Message, Stream Content)> members, CancellationToken cancellationToken)
            {
                watch._writeStarted?.TrySetResult();
                return inner.WritePackAsync(mailbox, members, cancellationToken);
            }

            public async Task<IReadOnlyList<StoreResult>> CommitAsync(string mailbox, IReadOnlyList<IngestedMessage> messages, CancellationToken cancellationToken)
            {
                var number = Interlocked.Increment(ref watch._commits);
                if (number == watch.FailCommit)
                    throw new InvalidOperationException("commit refused by the test");
                if (number == 1 && watch.HoldFirstCommitForWrite)
                {
                    var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                    watch._writeStarted = started;
                    watch.WriteStartedDuringFirstCommit = await Task.WhenAny(started.Task, Task.Delay(TimeSpan.FromSeconds(20), cancellationToken)) == started.Task;
                    watch._writeStarted = null;
                }
                return await inner.CommitAsync(mailbox, messages, cancellationToken);
            }
        }
    }
}
