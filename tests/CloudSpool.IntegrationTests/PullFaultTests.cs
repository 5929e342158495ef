using CloudSpool.Core.Accounts;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>Upstream trouble in the middle of a run: a message the server refuses, a connection cut mid-RETR.</summary>
public sealed class PullFaultTests : DovecotAndSpoolTest
{
    [Fact]
    public async Task The_state_is_read_again_under_the_lease_so_a_run_another_worker_just_failed_is_honoured()
    {
        Dovecot.AddUser("raced", "pw");
        Dovecot.DeliverRaw("raced", TestMail.Create("waits for the backoff"));
        var account = PullHarness.Account(Dovecot, "raced", "raced", "pw", "raced");
        // Between this run's first read of the state and its lease, another worker finishes a failed run and saves a backoff.
        var racing = new RacingLeases(Spool.Runtime.Leases, () => Spool.Runtime.States.SaveStateAsync(new AccountPullState
        {
            Account = "raced", FailureStreak = 2, LastAttempt = DateTimeOffset.UtcNow, LastError = "connection refused",
            NextAttemptAfter = DateTimeOffset.UtcNow.AddMinutes(10),
        }, CancellationToken.None));
        var engine = new PullEngine(Spool.Runtime.Connector, Spool.Runtime.Spool, Spool.Runtime.Ledger, Spool.Runtime.States, racing,
            new PullEngineOptions { TempDirectory = Spool.TempDirectory }, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<PullEngine>.Instance);

        var run = await engine.RunAsync(account, new PullRunRequest(), CancellationToken.None);
        Assert.Equal(RunOutcome.Skipped, run.Outcome);
        Assert.StartsWith("backing off after 2 failures", run.SkipReason, StringComparison.Ordinal);
        var state = await Spool.Runtime.States.GetStateAsync("raced", CancellationToken.None);
        Assert.Equal(2, state!.FailureStreak); // the other worker's outcome stands
        Assert.Empty(await Spool.ListAsync("raced"));
    }

    /// <summary>Runs an action (another worker's write) right before each lease is taken.</summary>
    private sealed class RacingLeases(ILeaseManager inner, Func<Task> before) : ILeaseManager
    {
        public async Task<ILease?> TryAcquireAsync(string name, CancellationToken cancellationToken)
        {
            await before();
            return await inner.TryAcquireAsync(name, cancellationToken);
        }

        public Task<ILease?> TakeOverAsync(string name, CancellationToken cancellationToken) => inner.TakeOverAsync(name, cancellationToken);
    }

    [Fact]
    public async Task A_message_the_server_refuses_is_skipped_recorded_and_retried_without_blocking_the_others()
    {
        Dovecot.AddUser("broken", "pw");
        Dovecot.DeliverRaw("broken", TestMail.Create("first"));
        var unreadable = Dovecot.DeliverUnreadable("broken", TestMail.Create("refused"));
        Dovecot.DeliverRaw("broken", TestMail.Create("after the bad one"));
        var account = PullHarness.Account(Dovecot, "broken", "broken", "pw", "uma") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 2, 1), (run.Outcome, run.Stored, run.FailedMessages));
        Assert.Equal(["after the bad one", "first"], (await Spool.ListAsync("uma")).Select(m => m.Summary.Subject).Order());
        var failure = Assert.Single(await Spool.Runtime.Ledger.ListMessageFailuresAsync("broken", CancellationToken.None));
        Assert.Contains("RETR", failure.Error);
        Assert.Equal(1, failure.Attempts);
        Assert.Equal(1, await UpstreamProbe.CountAsync(Dovecot, "broken", "pw")); // only the refused one is left

        var again = await Spool.PullAsync(account);
        Assert.Equal((0, 1), (again.Stored, again.FailedMessages));
        Assert.Equal(2, Assert.Single(await Spool.Runtime.Ledger.ListMessageFailuresAsync("broken", CancellationToken.None)).Attempts);

        Dovecot.MakeReadable(unreadable);
        var healed = await Spool.PullAsync(account);
        Assert.Equal((1, 0), (healed.Stored, healed.FailedMessages));
        Assert.Empty(await Spool.Runtime.Ledger.ListMessageFailuresAsync("broken", CancellationToken.None));
        Assert.Equal(3, (await Spool.ListAsync("uma")).Count);
    }

    [Fact]
    public async Task A_connection_cut_mid_retr_keeps_what_was_stored_deletes_nothing_and_the_next_run_completes()
    {
        Dovecot.AddUser("cut", "pw");
        for (var i = 0; i < 10; i++)
            Dovecot.DeliverRaw("cut", TestMail.Create($"cut {i}", bodyBytes: 10_000));
        await using var proxy = new CuttingProxy(Dovecot.Pop3Port) { CutAfterBytes = 55_000 }; // inside the 6th message
        var account = PullHarness.Account(Dovecot, "cut", "cut", "pw", "vera") with { Port = proxy.Port, Leave = new LeavePolicy { DeleteWhenStored = true } };

        var cut = await Spool.PullAsync(account);

        Assert.Equal(1, proxy.Cuts);
        Assert.Equal(RunOutcome.Failed, cut.Outcome);
        Assert.True(cut.ErrorKind is UpstreamErrorKind.Protocol or UpstreamErrorKind.Connect, $"{cut.ErrorKind}: {cut.Error}");
        Assert.True(cut.Stored is >= 3 and <= 5, $"stored {cut.Stored} before the cut: {cut.ErrorKind}: {cut.Error}");
        Assert.Equal(cut.Stored, (await Spool.ListAsync("vera")).Count);
        // No QUIT reached the server: RFC 1939 says nothing is deleted.
        Assert.Equal(10, await UpstreamProbe.CountAsync(Dovecot, "cut", "pw"));
        var state = await Spool.Runtime.States.GetStateAsync("cut", CancellationToken.None);
        Assert.Equal(1, state!.FailureStreak);

        proxy.CutAfterBytes = null;
        var next = await Spool.PullAsync(account);

        Assert.Equal((RunOutcome.Succeeded, 10 - cut.Stored, 10), (next.Outcome, next.Stored, next.DeletedUpstream));
        Assert.Equal(10, (await Spool.ListAsync("vera")).Select(m => m.Summary.Subject).Distinct().Count());
        Assert.Equal(0, await UpstreamProbe.CountAsync(Dovecot, "cut", "pw"));
    }
}
