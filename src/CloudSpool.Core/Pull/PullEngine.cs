using System.Diagnostics;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Pull;

/// <summary>Settings of the pull engine.</summary>
public sealed record PullEngineOptions
{
    /// <summary>
    /// Where message bytes are staged between upstream and the spool: a directory of this user only (created 0700,
    /// another user's refused), files 0600. Default: one per user in the system's temp folder.
    /// </summary>
    public string TempDirectory { get; init; } = Security.PrivateFiles.DefaultTempDirectory;

    /// <summary>What account password references may name (checked again at every run).</summary>
    public SecretPolicy Secrets { get; init; } = SecretPolicy.Default;

    /// <summary>Delay before the first retry after a failed run; doubles with each failure.</summary>
    public TimeSpan BaseBackoff { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Cap of the backoff: a failing account is retried at least this often, forever.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromHours(1);

    /// <summary>The zone whose calendar day "pulled today" counts (the account state's Today figures).</summary>
    public TimeZoneInfo DayZone { get; init; } = TimeZoneInfo.Utc;

    /// <summary>How often long imports report progress.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Messages larger than this (by the server's count) are left upstream and reported.</summary>
    public long MaxMessageBytes { get; init; } = 256L << 20;

    /// <summary>
    /// How many seen-ledger entries are written together (in chunk rows of 100, one transaction). After a crash, the
    /// messages stored since the last write are fetched again by the next run and recognised by their dedup key.
    /// </summary>
    public int SeenBatchSize { get; init; } = 200;

    /// <summary>How many messages are being written to the spool while the next ones are fetched.</summary>
    public int StoreConcurrency { get; init; } = 32;

    /// <summary>How many bytes of staged messages may wait for their write and commit (small ones wait in memory).</summary>
    public long StoreBytesInFlight { get; init; } = 16L << 20;

    /// <summary>How many messages' metadata are committed in one transaction (at most 49: 100 entities); also the most messages in a pack.</summary>
    public int CommitBatchSize { get; init; } = 49;

    /// <summary>
    /// Messages up to this size are written together in packs (one storage request for many small messages); larger ones
    /// get a blob of their own. 0 writes every message on its own.
    /// </summary>
    public long PackMessageBytes { get; init; } = 2L << 20;

    /// <summary>
    /// Messages up to this size wait for their write in memory; larger ones in a temporary file (a 50 MB message never
    /// sits whole in memory). What waits is bounded by <see cref="StoreBytesInFlight"/>. 0 stages every message in a file.
    /// </summary>
    public long StageInMemoryBytes { get; init; } = 8L << 20;

    /// <summary>A pack is written once it holds this many bytes (or <see cref="CommitBatchSize"/> messages).</summary>
    public long PackBytes { get; init; } = 8L << 20;

    /// <summary>How often a running pull measures the embedded store again (<see cref="PullEngine.Capacity"/>).</summary>
    public TimeSpan CapacityCheckInterval { get; init; } = TimeSpan.FromSeconds(2);
}

/// <summary>How a run was started.</summary>
public sealed record PullRunRequest
{
    /// <summary>Manual runs (`cloudspool job run pull`) ignore the failure backoff.</summary>
    public bool IgnoreBackoff { get; init; }

    /// <summary>Receives progress lines of long imports.</summary>
    public IProgress<PullProgress>? Progress { get; init; }
}

/// <summary>Progress of a run, reported every few seconds.</summary>
public sealed record PullProgress(string Account, string Scope, int Done, int Total, long Bytes);

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
                record = run.ToRecord(account.Name, started, clock.GetUtcNow(), PullOutcome.Succeeded);
            }
            catch (OperationCanceledException) when (lease.Lost.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                record = run.ToRecord(account.Name, started, clock.GetUtcNow(), PullOutcome.Failed) with
                {
                    Error = "the pull lease was lost (storage unreachable or taken over); stopped to avoid double work",
                    ErrorKind = UpstreamErrorKind.Storage,
                };
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                var (kind, text) = Describe(ex);
                record = run.ToRecord(account.Name, started, clock.GetUtcNow(), PullOutcome.Failed) with { Error = text, ErrorKind = kind };
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
            var marked = new List<MarkedDeletion>();
            foreach (var scope in session.Scopes)
            {
                await PullScopeAsync(account, session, scope, request, run, marked, ct).ConfigureAwait(false);
            }
            var confirmed = await session.CommitAsync(ct).ConfigureAwait(false);
            await ForgetDeletedAsync(account, marked, confirmed, run).ConfigureAwait(false);
            return session.Status;
        }
    }

    /// <summary>A message this run marked for deletion upstream, with the scope and validity of its seen entry.</summary>
    private sealed record MarkedDeletion(string Scope, string Validity, UpstreamMessage Message);

    /// <summary>
    /// Counts the deletions the server confirmed and forgets their seen entries (at once, not when a later run no longer
    /// lists them): RFC 1939 keeps a UIDL unique only while its message exists, so a server whose UID state is reset can
    /// give the next message the UIDL of one deleted here, and that message is new mail.
    /// </summary>
    private async Task ForgetDeletedAsync(AccountDefinition account, List<MarkedDeletion> marked, IReadOnlyList<UpstreamMessage> confirmed, RunCounters run)
    {
        if (confirmed.Count == 0)
            return;
        var gone = confirmed.ToHashSet(ReferenceEqualityComparer.Instance);
        var deleted = marked.Where(m => gone.Contains(m.Message)).ToList();
        marked.RemoveAll(m => gone.Contains(m.Message));
        run.Deleted += deleted.Count;
        foreach (var scope in deleted.GroupBy(m => (m.Scope, m.Validity)))
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await ledger.ForgetSeenAsync(account.Name, scope.Key.Scope, scope.Key.Validity, [.. scope.Select(m => m.Message.Key)], timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The mail is safe (stored, then deleted upstream). The next run forgets entries no longer listed, and a
                // listed message whose size differs from its entry is fetched as new whatever its key.
                logger.LogWarning("{Account}{Scope}: could not forget the seen entries of {Count} messages deleted upstream ({Error})",
                    account.Name, ScopeLabel(scope.Key.Scope), scope.Count(), ex.Message);
            }
        }
    }

    private async Task PullScopeAsync(AccountDefinition account, IUpstreamSession session, string scope, PullRunRequest request, RunCounters run,
        List<MarkedDeletion> marked, CancellationToken ct)
    {
        var listing = await session.OpenScopeAsync(scope, ct).ConfigureAwait(false);
        var knownValidity = await ledger.GetScopeValidityAsync(account.Name, scope, ct).ConfigureAwait(false);
        var now = clock.GetUtcNow();

        if (knownValidity is null && account.FirstRun == FirstRunMode.SkipExisting)
        {
            // First run, "only new mail": take everything there now as seen, store nothing, delete nothing.
            var entries = listing.Messages.Select(m => new SeenEntry(m.Key, now, Stored: false, MessageKey: null, m.Size)).ToList();
            await ledger.MarkSeenAsync(account.Name, scope, listing.Validity, entries, ct).ConfigureAwait(false);
            await ledger.SetScopeValidityAsync(account.Name, scope, listing.Validity, ct).ConfigureAwait(false);
            run.TakenAsSeen += entries.Count;
            logger.LogInformation("{Account}{Scope}: first run takes {Count} existing messages as seen", account.Name, ScopeLabel(scope), entries.Count);
            await session.CloseScopeAsync(ct).ConfigureAwait(false);
            return;
        }

        if (knownValidity is not null && knownValidity != listing.Validity)
        {
            // IMAP UIDVALIDITY changed (RFC 3501 section 2.3.1.1): the old UIDs mean nothing now. Messages are
            // fetched again, and the mailbox's dedup key recognises those it already holds: none becomes new mail.
            logger.LogWarning("{Account}{Scope}: UIDVALIDITY changed from {Old} to {New}; re-checking {Count} messages against the spool",
                account.Name, ScopeLabel(scope), knownValidity, listing.Validity, listing.Messages.Count);
        }

        var seen = await ledger.LoadSeenAsync(account.Name, scope, listing.Validity, ct).ConfigureAwait(false);
        var failedBefore = (await ledger.ListMessageFailuresAsync(account.Name, ct).ConfigureAwait(false))
            .Where(f => f.Scope == scope).Select(f => f.Key).ToHashSet(StringComparer.Ordinal);
        var pending = new List<SeenEntry>();
        var unseen = new List<UpstreamMessage>();
        var progress = Stopwatch.StartNew();
        var measured = Stopwatch.StartNew();
        var done = 0;

        // A listed message is the one its seen entry records only if its size matches too: a key is unique only while its
        // message exists (RFC 1939 section 7), and a server whose UID state was reset (a migrated mailbox, a rebuilt
        // index) gives new mail the UIDLs of messages deleted long ago. Such a message is fetched as new; the dedup key
        // still recognises a true duplicate. Messages stored earlier that the leave policy now wants gone (older than N
        // days, or a deletion that never reached the server because the connection dropped before QUIT) are deleted only
        // when they are the message stored.
        var learned = new List<SeenEntry>();
        foreach (var message in listing.Messages)
        {
            if (!seen.TryGetValue(message.Key, out var entry))
            {
                unseen.Add(message);
            }
            else if (!entry.MatchesSize(message.Size))
            {
                logger.LogWarning("{Account}{Scope}: message {Key} is listed with {Size} bytes, but the message seen under that key had {SeenSize}: the server reused the key; fetching it as new",
                    account.Name, ScopeLabel(scope), message.Key, message.Size, entry.Size);
                unseen.Add(message);
            }
            else if (entry.Stored && account.Leave.ShouldDelete(entry.FirstSeen, message.Size, now))
            {
                await session.MarkDeletedAsync(message, ct).ConfigureAwait(false);
                marked.Add(new MarkedDeletion(scope, listing.Validity, message));
            }
            else if (entry.Size == SeenEntry.UnknownSize)
            {
                // Imported without a size: from now on the key is known with its size, so a reused key is told apart.
                learned.Add(entry with { Size = message.Size });
            }
        }
        if (learned.Count > 0)
            await ledger.MarkSeenAsync(account.Name, scope, listing.Validity, learned, ct).ConfigureAwait(false);

        // Fetching is sequential on the upstream session. Writing the bytes overlaps with it (a bounded number of
        // messages and bytes at a time); metadata is committed in batches; a message is marked for deletion only
        // after its own commit.
        var toFetch = unseen.Where(m => m.Size <= options.MaxMessageBytes).ToList();
        session.PlanFetches(toFetch);
        var inFlight = new Queue<StoreUnit>();
        long inFlightBytes = 0;
        // The commit of the batch before runs while the next messages are fetched (one at a time, in order).
        Task<CommittedBatch>? committing = null;
        // Small messages wait here until there are enough of them for a pack.
        var packing = new List<PendingStore>();
        long packingBytes = 0;
        void Enqueue(StoreUnit unit)
        {
            inFlight.Enqueue(unit);
            inFlightBytes += unit.Bytes;
        }
        void WritePack(CancellationToken token)
        {
            if (packing.Count == 1)
                Enqueue(WriteAlone(account, packing[0], token));
            else if (packing.Count > 1)
                Enqueue(new StoreUnit([.. packing], Packed: true, spool.WritePackAsync(account.Mailbox, packing.Select(p => (p.Ingested, p.Content)).ToList(), token)));
            packing.Clear();
            packingBytes = 0;
        }
        // Finishes the running commit once it has ended, and starts the next one once a batch is written. With wait (the
        // queue is full, or being drained) it waits for the running commit and for the write at the head of the queue.
        async Task AdvanceCommitsAsync(bool wait)
        {
            if (committing is { IsCompleted: true } || (committing is not null && wait))
            {
                // Taken out first: whatever happens while it is finished, it is never counted twice.
                var commit = committing;
                committing = null;
                await FinishCommitAsync(account, session, scope, listing.Validity, commit, failedBefore, pending, run, marked, ct).ConfigureAwait(false);
            }
            if (committing is null && (wait || CompletedAtHead(inFlight) >= options.CommitBatchSize))
            {
                (committing, var released) = await StartCommitAsync(account, inFlight, wait, ct).ConfigureAwait(false);
                inFlightBytes -= released;
            }
        }
        try
        {
            foreach (var message in unseen)
            {
                ct.ThrowIfCancellationRequested();
                if (measured.Elapsed >= options.CapacityCheckInterval)
                {
                    // What was fetched so far is still written and committed (the failing run's settling), never deleted upstream.
                    EnsureRoomForMail();
                    measured.Restart();
                }
                var fetched = await FetchOneAsync(account, session, scope, message, run, ct).ConfigureAwait(false);
                done++;
                if (fetched is not null)
                {
                    if (fetched.Ingested.Figures.RawLength > options.PackMessageBytes)
                    {
                        Enqueue(WriteAlone(account, fetched, ct));
                    }
                    else
                    {
                        packing.Add(fetched);
                        packingBytes += fetched.Ingested.Figures.RawLength;
                        if (packing.Count >= options.CommitBatchSize || packingBytes >= options.PackBytes)
                            WritePack(ct);
                    }
                }

                await AdvanceCommitsAsync(wait: inFlight.Count >= options.StoreConcurrency || inFlightBytes >= options.StoreBytesInFlight).ConfigureAwait(false);

                if (pending.Count >= options.SeenBatchSize)
                {
                    await ledger.MarkSeenAsync(account.Name, scope, listing.Validity, pending, ct).ConfigureAwait(false);
                    pending.Clear();
                }
                if (progress.Elapsed >= options.ProgressInterval)
                {
                    progress.Restart();
                    request.Progress?.Report(new PullProgress(account.Name, scope, done, unseen.Count, run.Bytes));
                    logger.LogInformation("{Account}{Scope}: {Done}/{Total} new messages, {Bytes} bytes so far",
                        account.Name, ScopeLabel(scope), done, unseen.Count, run.Bytes);
                }
            }
            WritePack(ct);
            while (committing is not null || inFlight.Count > 0)
                await AdvanceCommitsAsync(wait: true).ConfigureAwait(false);
        }
        finally
        {
            // After a failure, what was fetched whole is kept: the messages waiting for a pack are written now (an
            // upstream that always drops the connection after a few messages must not keep a run from ever storing
            // any), the writes still running end before their staged files go away, and what was written is
            // committed (safely stored then; only the upstream deletion waits for the next run). A run being stopped
            // (shutdown, lost lease) starts no new write: the next run fetches those messages again.
            using var settling = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            if (!ct.IsCancellationRequested)
                WritePack(settling.Token);
            foreach (var item in packing)
                await item.File.DisposeAsync().ConfigureAwait(false);
            if (committing is not null)
                await SettleCommitAsync(committing, pending, run).ConfigureAwait(false);
            if (inFlight.Count > 0)
                await SettleAsync(account, inFlight, pending, run).ConfigureAwait(false);
            // What was committed is recorded as seen even when the run fails, so the next run need not re-fetch it.
            if (pending.Count > 0)
                await FlushSeenAsync(account, scope, listing.Validity, pending).ConfigureAwait(false);
        }

        // Seen entries of messages no longer listed are of no use, and a POP3 server may give their UIDLs to new mail
        // (IMAP never reuses a UID within a UIDVALIDITY). Even if a server hid a message for a while, the dedup key
        // would keep it from being stored twice when it comes back.
        var listed = listing.Messages.Select(m => m.Key).ToHashSet(StringComparer.Ordinal);
        var gone = seen.Keys.Where(k => !listed.Contains(k)).ToList();
        if (gone.Count > 0)
            await ledger.ForgetSeenAsync(account.Name, scope, listing.Validity, gone, ct).ConfigureAwait(false);
        if (knownValidity is not null && knownValidity != listing.Validity)
        {
            var stale = await ledger.LoadSeenAsync(account.Name, scope, knownValidity, ct).ConfigureAwait(false);
            await ledger.ForgetSeenAsync(account.Name, scope, knownValidity, stale.Keys.ToList(), ct).ConfigureAwait(false);
        }
        if (knownValidity != listing.Validity)
            await ledger.SetScopeValidityAsync(account.Name, scope, listing.Validity, ct).ConfigureAwait(false);
        var expunged = await session.CloseScopeAsync(ct).ConfigureAwait(false);
        await ForgetDeletedAsync(account, marked, expunged, run).ConfigureAwait(false);
    }

    private async Task FlushSeenAsync(AccountDefinition account, string scope, string validity, List<SeenEntry> pending)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await ledger.MarkSeenAsync(account.Name, scope, validity, pending, timeout.Token).ConfigureAwait(false);
            pending.Clear();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Harmless to lose: those messages are in the spool, and the next run's dedup key recognises them.
            logger.LogWarning("{Account}{Scope}: could not record {Count} stored messages as seen ({Error}); the next run re-checks them",
                account.Name, ScopeLabel(scope), pending.Count, ex.Message);
        }
    }

    /// <summary>A message fetched and staged.</summary>
    private sealed record PendingStore(UpstreamMessage Message, IngestFile File, Stream Content, IngestedMessage Ingested);

    /// <summary>
    /// The write of one message's own blob, or of a pack of several; <see cref="Write"/> gives the pack slots of the
    /// members (none for a message on its own). A pack is committed in one call of its own, never in two.
    /// </summary>
    private sealed record StoreUnit(IReadOnlyList<PendingStore> Members, bool Packed, Task<IReadOnlyList<PackSlot>> Write)
    {
        public long Bytes => Members.Sum(m => m.Ingested.Figures.RawLength);
    }

    private StoreUnit WriteAlone(AccountDefinition account, PendingStore item, CancellationToken ct) =>
        new([item], Packed: false, WriteAloneAsync(account.Mailbox, item, ct));

    private async Task<IReadOnlyList<PackSlot>> WriteAloneAsync(string mailbox, PendingStore item, CancellationToken ct)
    {
        await spool.WriteContentAsync(mailbox, item.Ingested, item.Content, ct).ConfigureAwait(false);
        return [];
    }

    /// <summary>The members of a written unit as they are committed: with their place in the pack.</summary>
    private static IEnumerable<IngestedMessage> Placed(StoreUnit unit)
    {
        var slots = unit.Write.Result;
        return unit.Members.Select((m, i) => unit.Packed ? m.Ingested with { Pack = slots[i] } : m.Ingested);
    }

    private static int CompletedAtHead(Queue<StoreUnit> inFlight)
    {
        var count = 0;
        foreach (var unit in inFlight)
        {
            if (!unit.Write.IsCompleted)
                break;
            count += unit.Members.Count;
        }
        return count;
    }

    /// <summary>Fetches one message into a staged file, meters and summarises it; null when the server refused it (recorded, retried next run).</summary>
    private async Task<PendingStore?> FetchOneAsync(AccountDefinition account, IUpstreamSession session, string scope, UpstreamMessage message, RunCounters run, CancellationToken ct)
    {
        if (message.Size > options.MaxMessageBytes)
        {
            var error = $"message is {message.Size} bytes, larger than the limit of {options.MaxMessageBytes}; left upstream";
            await ledger.RecordMessageFailureAsync(account.Name, scope, message.Key, error, ct).ConfigureAwait(false);
            run.FailedMessages++;
            return null;
        }

        var file = IngestFile.Create(options.TempDirectory, memoryLimit: options.StageInMemoryBytes);
        try
        {
            try
            {
                await session.FetchAsync(message, file, ct).ConfigureAwait(false);
            }
            catch (UpstreamMessageException ex)
            {
                logger.LogWarning("{Account}{Scope}: message {Key} could not be fetched ({Error}); it stays upstream and is retried next run",
                    account.Name, ScopeLabel(scope), message.Key, ex.Message);
                await ledger.RecordMessageFailureAsync(account.Name, scope, message.Key, ex.Message, ct).ConfigureAwait(false);
                run.FailedMessages++;
                await file.DisposeAsync().ConfigureAwait(false);
                return null;
            }

            var content = file.Seal();
            var figures = file.Figures;
            var summary = MessageSummarizer.Summarize(content, ct);
            content.Position = 0;
            if (summary.Malformed)
                logger.LogWarning("{Account}{Scope}: message {Key} is malformed ({Error}); storing it as received", account.Name, ScopeLabel(scope), message.Key, summary.ParseError);
            var ingested = new IngestedMessage(figures, summary, DedupKey.For(summary.MessageId, figures), account.Name, message.Key, clock.GetUtcNow());
            return new PendingStore(message, file, content, ingested);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The messages of one committed batch and what the spool made of each.</summary>
    private sealed record CommittedBatch(List<PendingStore> Batch, IReadOnlyList<StoreResult> Results);

    /// <summary>
    /// Takes the written messages at the head of the queue as one batch (waiting for the first one's write when
    /// <paramref name="wait"/>), releases their staged copies (their bytes are in the spool; the commit needs only their
    /// metadata) and starts committing them. Returns the running commit (null when nothing was written yet) and the bytes
    /// that left the queue.
    /// </summary>
    private async Task<(Task<CommittedBatch>? Commit, long Released)> StartCommitAsync(AccountDefinition account, Queue<StoreUnit> inFlight, bool wait, CancellationToken ct)
    {
        var batch = new List<PendingStore>();
        var placed = new List<IngestedMessage>();
        try
        {
            // Messages on their own are committed together; a pack is committed in a call of its own.
            while (inFlight.Count > 0 && (inFlight.Peek().Write.IsCompleted || (wait && batch.Count == 0)))
            {
                var unit = inFlight.Peek();
                if (batch.Count > 0 && (unit.Packed || batch.Count >= options.CommitBatchSize))
                    break;
                // Dequeued before the wait: a failed write leaves the queue, and its files are released below.
                batch.AddRange(inFlight.Dequeue().Members);
                await AwaitStorageAsync(unit.Write, unit.Members[0].Message).ConfigureAwait(false);
                placed.AddRange(Placed(unit));
                if (unit.Packed)
                    break;
            }
        }
        finally
        {
            foreach (var item in batch)
                await item.File.DisposeAsync().ConfigureAwait(false);
        }
        if (batch.Count == 0)
            return (null, 0);
        return (CommitAsync(account.Mailbox, batch, placed, ct), batch.Sum(b => b.Ingested.Figures.RawLength));
    }

    private async Task<CommittedBatch> CommitAsync(string mailbox, List<PendingStore> batch, List<IngestedMessage> placed, CancellationToken ct)
    {
        try
        {
            return new CommittedBatch(batch, await spool.CommitAsync(mailbox, placed, ct).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new UpstreamException(UpstreamErrorKind.Storage, $"could not commit {batch.Count} messages to the spool: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Waits for a commit, then records its messages as seen and marks for deletion those the policy wants gone (on the
    /// upstream session, so never while a fetch is running).
    /// </summary>
    private async Task FinishCommitAsync(AccountDefinition account, IUpstreamSession session, string scope, string validity, Task<CommittedBatch> commit,
        HashSet<string> failedBefore, List<SeenEntry> pending, RunCounters run, List<MarkedDeletion> marked, CancellationToken ct)
    {
        var (batch, results) = await commit.ConfigureAwait(false);
        for (var i = 0; i < batch.Count; i++)
        {
            var item = batch[i];
            var entry = Record(item, results[i], pending, run);
            if (failedBefore.Contains(item.Message.Key))
                await ledger.ClearMessageFailureAsync(account.Name, scope, item.Message.Key, ct).ConfigureAwait(false);
            if (account.Leave.ShouldDelete(entry.FirstSeen, item.Message.Size, entry.FirstSeen))
            {
                // Safe: this message's bytes and metadata are committed; its seen entry is written before QUIT.
                await session.MarkDeletedAsync(item.Message, ct).ConfigureAwait(false);
                marked.Add(new MarkedDeletion(scope, validity, item.Message));
            }
        }
    }

    /// <summary>During a failing run: the commit still running ends; what it committed is counted and recorded as seen.</summary>
    private async Task SettleCommitAsync(Task<CommittedBatch> commit, List<SeenEntry> pending, RunCounters run)
    {
        try
        {
            var (batch, results) = await commit.ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
                Record(batch[i], results[i], pending, run);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Not marked seen: the next run fetches them again, and the dedup key recognises any that did commit.
            logger.LogDebug("commit during a failing run ended with {Error}", ex.Message);
        }
    }

    private static async Task AwaitStorageAsync(Task write, UpstreamMessage message)
    {
        try
        {
            await write.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new UpstreamException(UpstreamErrorKind.Storage, $"could not write message {message.Key} to the spool: {ex.Message}", ex);
        }
    }

    /// <summary>During a failing run: waits for the writes still running, commits what was written (best effort), releases the staged files.</summary>
    private async Task SettleAsync(AccountDefinition account, Queue<StoreUnit> inFlight, List<SeenEntry> pending, RunCounters run)
    {
        var written = new List<PendingStore>();
        var placed = new List<IngestedMessage>();
        foreach (var unit in inFlight)
        {
            try
            {
                await unit.Write.ConfigureAwait(false);
                written.AddRange(unit.Members);
                placed.AddRange(Placed(unit));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                logger.LogDebug("write of {Key} during a failing run ended with {Error}", unit.Members[0].Message.Key, ex.Message);
            }
        }
        try
        {
            if (written.Count > 0)
            {
                // One call for all of them: each pack among them is committed here once, and never again.
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var results = await spool.CommitAsync(account.Mailbox, placed, timeout.Token).ConfigureAwait(false);
                for (var i = 0; i < written.Count; i++)
                    Record(written[i], results[i], pending, run);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Not marked seen: the next run fetches them again, and the dedup key recognises any that did commit.
            logger.LogDebug("commit of {Count} written messages during a failing run ended with {Error}", written.Count, ex.Message);
        }
        finally
        {
            while (inFlight.Count > 0)
            {
                foreach (var item in inFlight.Dequeue().Members)
                    await item.File.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Counts a committed message (stored or a duplicate) and adds its seen entry to <paramref name="pending"/>.</summary>
    private SeenEntry Record(PendingStore item, StoreResult result, List<SeenEntry> pending, RunCounters run)
    {
        var entry = new SeenEntry(item.Message.Key, clock.GetUtcNow(), Stored: true, result.MessageKey, item.Message.Size);
        pending.Add(entry);
        if (result.Outcome == StoreOutcome.Stored)
        {
            run.Stored++;
            run.Bytes += item.Ingested.Figures.RawLength;
        }
        else
        {
            run.Duplicates++;
        }
        return entry;
    }

    private async Task<PullRunRecord> SkipAsync(AccountDefinition account, DateTimeOffset started, string reason, CancellationToken ct)
    {
        logger.LogInformation("{Account}: run skipped: {Reason}", account.Name, reason);
        var record = new PullRunRecord
        {
            Account = account.Name,
            Started = started,
            Finished = clock.GetUtcNow(),
            Outcome = PullOutcome.Skipped,
            SkipReason = reason,
        };
        Telemetry.CloudSpoolMetrics.RecordPullRun(record);
        await states.AppendRunAsync(record, ct).ConfigureAwait(false);
        return record;
    }

    private async Task RecordAsync(AccountDefinition account, AccountPullState state, PullRunRecord record, UpstreamMailboxStatus? upstream)
    {
        // What was pulled today, in the configured zone: a new day starts from zero.
        var day = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(record.Finished, options.DayZone).DateTime);
        var sameDay = state.Today == day;
        state = state with
        {
            Today = day,
            TodayMessages = (sameDay ? state.TodayMessages : 0) + record.Stored,
            TodayBytes = (sameDay ? state.TodayBytes : 0) + record.Bytes,
        };
        AccountPullState next;
        if (record.Outcome == PullOutcome.Succeeded)
        {
            next = state with
            {
                LastAttempt = record.Started,
                LastSuccess = record.Finished,
                LastNewMail = record.Stored > 0 ? record.Finished : state.LastNewMail,
                FailureStreak = 0,
                NextAttemptAfter = null,
                LastRunMessages = record.Stored,
                LastRunBytes = record.Bytes,
                UpstreamMessages = upstream?.Messages ?? state.UpstreamMessages,
                UpstreamBytes = upstream?.Bytes ?? state.UpstreamBytes,
                UpstreamQuotaBytes = upstream is null ? state.UpstreamQuotaBytes : upstream.QuotaLimitBytes,
                UpstreamQuotaUsedBytes = upstream is null ? state.UpstreamQuotaUsedBytes : upstream.QuotaUsedBytes,
                UpstreamLeftFlaggedDeleted = upstream?.LeftFlaggedDeleted ?? state.UpstreamLeftFlaggedDeleted,
            };
            logger.LogInformation(
                "{Account}: pulled {Stored} new messages ({Bytes} bytes), {Duplicates} already held, {Deleted} deleted upstream, {Failed} failed, in {Seconds:F1}s",
                account.Name, record.Stored, record.Bytes, record.Duplicates, record.DeletedUpstream, record.FailedMessages, (record.Finished - record.Started).TotalSeconds);
        }
        else
        {
            var streak = state.FailureStreak + 1;
            next = state with
            {
                LastAttempt = record.Started,
                FailureStreak = streak,
                LastError = record.Error,
                LastErrorKind = record.ErrorKind,
                NextAttemptAfter = record.Finished + Backoff(streak),
                LastRunMessages = record.Stored,
                LastRunBytes = record.Bytes,
            };
            logger.LogError("{Account}: pull failed ({Kind}, {Streak} in a row, next try after {Next:u}): {Error}",
                account.Name, record.ErrorKind, streak, next.NextAttemptAfter, record.Error);
        }

        // The outcome must be recorded even when the run itself was cancelled by shutdown.
        using var recordTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        Telemetry.CloudSpoolMetrics.RecordPullRun(record);
        await states.SaveStateAsync(next, recordTimeout.Token).ConfigureAwait(false);
        await states.AppendRunAsync(record, recordTimeout.Token).ConfigureAwait(false);
    }

    /// <summary>Capped exponential backoff: base, 2×base, 4×base, … up to the cap.</summary>
    public TimeSpan Backoff(int streak)
    {
        var factor = Math.Pow(2, Math.Min(streak - 1, 30));
        var ticks = Math.Min(options.BaseBackoff.Ticks * factor, options.MaxBackoff.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }

    private static (UpstreamErrorKind Kind, string Text) Describe(Exception ex) => ex switch
    {
        UpstreamException u => (u.Kind, u.Message),
        _ => (UpstreamErrorKind.Unknown, $"{ex.GetType().Name}: {ex.Message}"),
    };

    private static string ScopeLabel(string scope) => scope.Length == 0 ? "" : "/" + scope;

    private sealed class RunCounters
    {
        public int Stored;
        public int Duplicates;
        public int TakenAsSeen;
        public long Bytes;
        public int Deleted;
        public int FailedMessages;

        public PullRunRecord ToRecord(string account, DateTimeOffset started, DateTimeOffset finished, PullOutcome outcome) => new()
        {
            Account = account,
            Started = started,
            Finished = finished,
            Outcome = outcome,
            Stored = Stored,
            Duplicates = Duplicates,
            TakenAsSeen = TakenAsSeen,
            Bytes = Bytes,
            DeletedUpstream = Deleted,
            FailedMessages = FailedMessages,
        };
    }
}
