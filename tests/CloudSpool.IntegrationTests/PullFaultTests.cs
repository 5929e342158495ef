using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.IntegrationTests.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>Upstream trouble in the middle of a run: a message the server refuses, a connection cut mid-RETR.</summary>
public sealed class PullFaultTests : IAsyncLifetime
{
    private DovecotServer _dovecot = null!;
    private PullHarness _spool = null!;

    public async Task InitializeAsync()
    {
        _dovecot = await DovecotServer.StartAsync();
        _spool = await PullHarness.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _spool.DisposeAsync();
        await _dovecot.DisposeAsync();
    }

    [Fact]
    public async Task A_message_the_server_refuses_is_skipped_recorded_and_retried_without_blocking_the_others()
    {
        _dovecot.AddUser("broken", "pw");
        _dovecot.DeliverRaw("broken", TestMail.Create("first"));
        var unreadable = _dovecot.DeliverUnreadable("broken", TestMail.Create("refused"));
        _dovecot.DeliverRaw("broken", TestMail.Create("after the bad one"));
        var account = PullHarness.Account(_dovecot, "broken", "broken", "pw", "uma") with { Leave = new LeavePolicy { DeleteWhenStored = true } };

        var run = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 2, 1), (run.Outcome, run.Stored, run.FailedMessages));
        Assert.Equal(["after the bad one", "first"], (await _spool.ListAsync("uma")).Select(m => m.Summary.Subject).Order());
        var failure = Assert.Single(await _spool.Runtime.Ledger.ListMessageFailuresAsync("broken", CancellationToken.None));
        Assert.Contains("RETR", failure.Error);
        Assert.Equal(1, failure.Attempts);
        Assert.Equal(1, await UpstreamProbe.CountAsync(_dovecot, "broken", "pw")); // only the refused one is left

        var again = await _spool.PullAsync(account);
        Assert.Equal((0, 1), (again.Stored, again.FailedMessages));
        Assert.Equal(2, Assert.Single(await _spool.Runtime.Ledger.ListMessageFailuresAsync("broken", CancellationToken.None)).Attempts);

        _dovecot.MakeReadable(unreadable);
        var healed = await _spool.PullAsync(account);
        Assert.Equal((1, 0), (healed.Stored, healed.FailedMessages));
        Assert.Empty(await _spool.Runtime.Ledger.ListMessageFailuresAsync("broken", CancellationToken.None));
        Assert.Equal(3, (await _spool.ListAsync("uma")).Count);
    }

    [Fact]
    public async Task A_connection_cut_mid_retr_keeps_what_was_stored_deletes_nothing_and_the_next_run_completes()
    {
        _dovecot.AddUser("cut", "pw");
        for (var i = 0; i < 10; i++)
            _dovecot.DeliverRaw("cut", TestMail.Create($"cut {i}", bodyBytes: 10_000));
        await using var proxy = new CuttingProxy(_dovecot.Pop3Port) { CutAfterBytes = 55_000 }; // inside the 6th message
        var account = PullHarness.Account(_dovecot, "cut", "cut", "pw", "vera") with { Port = proxy.Port, Leave = new LeavePolicy { DeleteWhenStored = true } };

        var cut = await _spool.PullAsync(account);

        Assert.Equal(1, proxy.Cuts);
        Assert.Equal(PullOutcome.Failed, cut.Outcome);
        Assert.True(cut.ErrorKind is UpstreamErrorKind.Protocol or UpstreamErrorKind.Connect, $"{cut.ErrorKind}: {cut.Error}");
        Assert.True(cut.Stored is >= 3 and <= 5, $"stored {cut.Stored} before the cut: {cut.ErrorKind}: {cut.Error}");
        Assert.Equal(cut.Stored, (await _spool.ListAsync("vera")).Count);
        // No QUIT reached the server: RFC 1939 says nothing is deleted.
        Assert.Equal(10, await UpstreamProbe.CountAsync(_dovecot, "cut", "pw"));
        var state = await _spool.Runtime.States.GetStateAsync("cut", CancellationToken.None);
        Assert.Equal(1, state!.FailureStreak);

        proxy.CutAfterBytes = null;
        var next = await _spool.PullAsync(account);

        Assert.Equal((PullOutcome.Succeeded, 10 - cut.Stored, 10), (next.Outcome, next.Stored, next.DeletedUpstream));
        Assert.Equal(10, (await _spool.ListAsync("vera")).Select(m => m.Summary.Subject).Distinct().Count());
        Assert.Equal(0, await UpstreamProbe.CountAsync(_dovecot, "cut", "pw"));
    }
}
