using CloudSpool.Core.Accounts;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Pull;

/// <summary>
/// Pulls one upstream account into the spool. Per message the order is fixed: fetch → blob written
/// → metadata committed → seen recorded → only then, per the leave policy, the upstream deletion.
/// A crash at any point therefore loses nothing, and the dedup key makes the next run store nothing twice.
/// </summary>
public sealed class PullEngine(
    IUpstreamConnector connector,
    ISpool spool,
    IPullLedger ledger,
    IPullStateStore states,
    ILeaseManager leases,
    PullEngineOptions options,
    TimeProvider clock,
    ILogger<PullEngine> logger)
{
    /// <summary>Name of the lease that makes one puller per account across all processes.</summary>
    public static string LeaseName(string account) => $"pull-{account}";

    /// <summary>
    /// The embedded store's gauge (null on a storage account): a run refuses new mail once the store is past its refusal
    /// share, before it connects and again while it fetches, and that mail stays upstream.
    /// </summary>
    public IStoreCapacityGauge? Capacity { get; init; }

    /// <summary>Fails the run (storage) when the embedded store takes no more mail: nothing more is fetched, nothing deleted upstream.</summary>
    private void EnsureRoomForMail()
    {
        if (Capacity?.Measure() is { Level: StoreCapacityLevel.Refuse } full)
            throw new UpstreamException(UpstreamErrorKind.Storage, full.Problem!);
    }

    /// <summary>Runs one pull of <paramref name="account"/> and records its outcome. Never throws for upstream or message trouble.</summary>
    public async Task<PullRunRecord> RunAsync(AccountDefinition account, PullRunRequest request, CancellationToken cancellationToken)
    {
        var started = clock.GetUtcNow();
        var state = await states.GetStateAsync(account.Name, cancellationToken).ConfigureAwait(false)
                    ?? new AccountPullState { Account = account.Name };

        if (!account.Enabled)
            return await SkipAsync(account, started, "account is disabled", cancellationToken).ConfigureAwait(false);
        if (!request.IgnoreBackoff && state.NextAttemptAfter is { } next && next > started)
            return await SkipAsync(account, started, $"backing off after {state.FailureStreak} failures until {next:u}", cancellationToken).ConfigureAwait(false);

        var lease = await leases.TryAcquireAsync(LeaseName(account.Name), cancellationToken).ConfigureAwait(false);
        if (lease is null)
            return await SkipAsync(account, started, "another worker is pulling this account", cancellationToken).ConfigureAwait(false);

        await using (lease.ConfigureAwait(false))
        {
            // Read again under the lease: another worker may have finished a run (and saved its state) between the read
            // above and the lease, and this run's outcome is written on top of what it saved, not of a stale copy.
            state = await states.GetStateAsync(account.Name, cancellationToken).ConfigureAwait(false) ?? state;
            if (!request.IgnoreBackoff && state.NextAttemptAfter is { } retryAfter && retryAfter > started)
                return await SkipAsync(account, started, $"backing off after {state.FailureStreak} failures until {retryAfter:u}", cancellationToken).ConfigureAwait(false);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.Lost);
            var run = new RunCounters();
            PullRunRecord record;
            UpstreamMailboxStatus? upstreamStatus = null;
            try
            {
                upstreamStatus = await PullAsync(account, request, run, linked.Token).ConfigureAwait(false);
                record = run.ToRecord(account.Name, started, clock.GetUtcNow(), RunOutcome.Succeeded);
            }
            catch (OperationCanceledException) when (lease.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                record = run.ToRecord(account.Name, started, clock.GetUtcNow(), RunOutcome.Failed) with
                {
                    Error = "the pull lease was lost (storage unreachable or taken over); stopped to avoid double work",
                    ErrorKind = UpstreamErrorKind.Storage,
                };
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                var (kind, text) = Describe(ex);
                record = run.ToRecord(account.Name, started, clock.GetUtcNow(), RunOutcome.Failed) with { Error = text, ErrorKind = kind };
            }

            await RecordAsync(account, state, record, upstreamStatus).ConfigureAwait(false);
            return record;
        }
    }

    private async Task<UpstreamMailboxStatus?> PullAsync(AccountDefinition account, PullRunRequest request, RunCounters run, CancellationToken ct)
    {
        string password;
        try
        {
            password = options.Secrets.Resolve(account.PasswordRef);
        }
        catch (SecretUnavailableException ex)
        {
            throw new UpstreamException(UpstreamErrorKind.Configuration, $"password unavailable: {ex.Message}", ex);
        }

        EnsureRoomForMail();
        var session = await connector.ConnectAsync(account, password, ct).ConfigureAwait(false);
        await using (session.ConfigureAwait(false))
        {
            var deletions = new UpstreamDeletions(ledger, logger, account, run);
            var pass = new ScopePass(spool, ledger, options, clock, logger, EnsureRoomForMail);
            foreach (var scope in session.Scopes)
                await pass.RunAsync(account, session, scope, request, run, deletions, ct).ConfigureAwait(false);
            await deletions.ConfirmAsync(await session.CommitAsync(ct).ConfigureAwait(false)).ConfigureAwait(false);
            return session.Status;
        }
    }

    private async Task<PullRunRecord> SkipAsync(AccountDefinition account, DateTimeOffset started, string reason, CancellationToken ct)
    {
        CoreLog.RunSkipped(logger, account.Name, reason);
        var record = new PullRunRecord
        {
            Account = account.Name,
            Started = started,
            Finished = clock.GetUtcNow(),
            Outcome = RunOutcome.Skipped,
            SkipReason = reason,
        };
        Telemetry.CloudSpoolMetrics.RecordPullRun(record);
        await states.AppendRunAsync(record, ct).ConfigureAwait(false);
        return record;
    }

    private async Task RecordAsync(AccountDefinition account, AccountPullState state, PullRunRecord record, UpstreamMailboxStatus? upstream)
    {
        var next = state.After(record, upstream, options.DayZone, Backoff(state.FailureStreak + 1));
        if (record.Outcome == RunOutcome.Succeeded)
        {
            CoreLog.Pulled(logger, account.Name, record.Stored, record.Bytes, record.Duplicates, record.DeletedUpstream, record.FailedMessages, (record.Finished - record.Started).TotalSeconds);
        }
        else
        {
            CoreLog.PullFailed(logger, account.Name, record.ErrorKind, next.FailureStreak, next.NextAttemptAfter, record.Error);
        }

        // The outcome must be recorded even when the run itself was cancelled by shutdown.
        using var recordTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Telemetry.CloudSpoolMetrics.RecordPullRun(record);
        await states.SaveStateAsync(next, recordTimeout.Token).ConfigureAwait(false);
        await states.AppendRunAsync(record, recordTimeout.Token).ConfigureAwait(false);
    }

    /// <summary>Capped exponential backoff: base, 2×base, 4×base, … up to the cap.</summary>
    public TimeSpan Backoff(int streak) => PullStateFold.Backoff(streak, options.BaseBackoff, options.MaxBackoff);

    private static (UpstreamErrorKind Kind, string Text) Describe(Exception ex) => ex switch
    {
        UpstreamException u => (u.Kind, u.Message),
        _ => (UpstreamErrorKind.Unknown, $"{ex.GetType().Name}: {ex.Message}"),
    };
}
