using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Pull;

/// <summary>A message fetched and staged, waiting for its write.</summary>
internal sealed record PendingStore(UpstreamMessage Message, IngestFile File, Stream Content, IngestedMessage Ingested);

/// <summary>
/// The write side of one scope's pass: fetched messages are written to the spool (small ones together in packs) while
/// the next ones are fetched, their metadata committed in batches, and their seen entries recorded. A bounded number of
/// messages and bytes wait at a time. Each committed message is handed to <c>committed</c> in order, on the caller's
/// flow, so the caller may mark it for deletion upstream: never before its bytes and metadata are in the spool.
/// </summary>
/// <remarks>
/// The caller's flow is: <see cref="Add"/> each fetched message and then <see cref="AdvanceAsync"/>; at the end
/// <see cref="DrainAsync"/>; and always, in a finally, <see cref="SettleAsync"/>, which keeps what a failing run fetched whole.
/// </remarks>
internal sealed class SpoolWritePipeline(
    ISpool spool,
    IPullLedger ledger,
    PullEngineOptions options,
    TimeProvider clock,
    ILogger logger,
    AccountDefinition account,
    ScopeRef scope,
    RunCounters run,
    Func<PendingStore, SeenEntry, CancellationToken, Task> committed)
{
    /// <summary>Written (or being written) units, in fetch order.</summary>
    private readonly Queue<StoreUnit> _inFlight = new();
    private long _inFlightBytes;

    /// <summary>The commit of the batch before runs while the next messages are fetched (one at a time, in order).</summary>
    private Task<CommittedBatch>? _committing;

    /// <summary>Small messages wait here until there are enough of them for a pack.</summary>
    private readonly List<PendingStore> _packing = [];
    private long _packingBytes;

    /// <summary>Seen entries of committed messages, written every <see cref="PullEngineOptions.SeenBatchSize"/>.</summary>
    private readonly List<SeenEntry> _pending = [];

    /// <summary>Takes a fetched message: written on its own when large, otherwise packed with the next small ones.</summary>
    public void Add(PendingStore fetched, CancellationToken ct)
    {
        if (fetched.Ingested.Figures.RawLength > options.PackMessageBytes)
        {
            Enqueue(WriteAlone(fetched, ct));
            return;
        }
        _packing.Add(fetched);
        _packingBytes += fetched.Ingested.Figures.RawLength;
        if (_packing.Count >= options.CommitBatchSize || _packingBytes >= options.PackBytes)
            WritePack(ct);
    }

    /// <summary>
    /// Moves the pipeline on after a fetch: finishes a commit that ended, starts the next once a batch is written, waits
    /// when too many messages or bytes are in flight, and records seen entries once enough are pending.
    /// </summary>
    public async Task AdvanceAsync(CancellationToken ct)
    {
        await AdvanceCommitsAsync(wait: _inFlight.Count >= options.StoreConcurrency || _inFlightBytes >= options.StoreBytesInFlight, ct).ConfigureAwait(false);
        if (_pending.Count >= options.SeenBatchSize)
        {
            await ledger.MarkSeenAsync(account.Name, scope.Name, scope.Validity, _pending, ct).ConfigureAwait(false);
            _pending.Clear();
        }
    }

    /// <summary>At the end of the listing: writes the last pack and waits until everything is committed.</summary>
    public async Task DrainAsync(CancellationToken ct)
    {
        WritePack(ct);
        while (_committing is not null || _inFlight.Count > 0)
            await AdvanceCommitsAsync(wait: true, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Always called last, also after a failure. What was fetched whole is kept: the messages waiting for a pack are
    /// written now (an upstream that always drops the connection after a few messages must not keep a run from ever
    /// storing any), the writes still running end before their staged files go away, and what was written is committed
    /// (safely stored then; only the upstream deletion waits for the next run). A run being stopped (shutdown, lost lease,
    /// <paramref name="stopping"/>) starts no new write: the next run fetches those messages again.
    /// </summary>
    public async Task SettleAsync(bool stopping)
    {
        using var settling = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        if (!stopping)
            WritePack(settling.Token);
        foreach (var item in _packing)
            await item.File.DisposeAsync().ConfigureAwait(false);
        if (_committing is not null)
            await SettleCommitAsync(_committing).ConfigureAwait(false);
        if (_inFlight.Count > 0)
            await SettleWritesAsync().ConfigureAwait(false);
        // What was committed is recorded as seen even when the run fails, so the next run need not re-fetch it.
        if (_pending.Count > 0)
            await FlushSeenAsync().ConfigureAwait(false);
    }

    private void Enqueue(StoreUnit unit)
    {
        _inFlight.Enqueue(unit);
        _inFlightBytes += unit.Bytes;
    }

    private void WritePack(CancellationToken token)
    {
        if (_packing.Count == 1)
            Enqueue(WriteAlone(_packing[0], token));
        else if (_packing.Count > 1)
            Enqueue(new StoreUnit([.. _packing], Packed: true, spool.WritePackAsync(account.Mailbox, _packing.Select(p => (p.Ingested, p.Content)).ToList(), token)));
        _packing.Clear();
        _packingBytes = 0;
    }

    /// <summary>
    /// Finishes the running commit once it has ended, and starts the next one once a batch is written. With
    /// <paramref name="wait"/> (the queue is full, or being drained) it waits for the running commit and for the write at
    /// the head of the queue.
    /// </summary>
    private async Task AdvanceCommitsAsync(bool wait, CancellationToken ct)
    {
        if (_committing is { IsCompleted: true } || (_committing is not null && wait))
        {
            // Taken out first: whatever happens while it is finished, it is never counted twice.
            var commit = _committing;
            _committing = null;
            await FinishCommitAsync(commit, ct).ConfigureAwait(false);
        }
        if (_committing is null && (wait || CompletedAtHead() >= options.CommitBatchSize))
        {
            (_committing, var released) = await StartCommitAsync(wait, ct).ConfigureAwait(false);
            _inFlightBytes -= released;
        }
    }

    /// <summary>
    /// The write of one message's own blob, or of a pack of several; <see cref="Write"/> gives the pack slots of the
    /// members (none for a message on its own). A pack is committed in one call of its own, never in two.
    /// </summary>
    private sealed record StoreUnit(IReadOnlyList<PendingStore> Members, bool Packed, Task<IReadOnlyList<PackSlot>> Write)
    {
        public long Bytes => Members.Sum(m => m.Ingested.Figures.RawLength);
    }

    /// <summary>The messages of one committed batch and what the spool made of each.</summary>
    private sealed record CommittedBatch(List<PendingStore> Batch, IReadOnlyList<StoreResult> Results);

    private StoreUnit WriteAlone(PendingStore item, CancellationToken ct) => new([item], Packed: false, WriteAloneAsync(item, ct));

    private async Task<IReadOnlyList<PackSlot>> WriteAloneAsync(PendingStore item, CancellationToken ct)
    {
        await spool.WriteContentAsync(account.Mailbox, item.Ingested, item.Content, ct).ConfigureAwait(false);
        return [];
    }

    /// <summary>The members of a written unit as they are committed: with their place in the pack.</summary>
    private static IEnumerable<IngestedMessage> Placed(StoreUnit unit)
    {
        var slots = unit.Write.Result;
        return unit.Members.Select((m, i) => unit.Packed ? m.Ingested with { Pack = slots[i] } : m.Ingested);
    }

    private int CompletedAtHead()
    {
        var count = 0;
        foreach (var unit in _inFlight)
        {
            if (!unit.Write.IsCompleted)
                break;
            count += unit.Members.Count;
        }
        return count;
    }

    /// <summary>
    /// Takes the written messages at the head of the queue as one batch (waiting for the first one's write when
    /// <paramref name="wait"/>), releases their staged copies (their bytes are in the spool; the commit needs only their
    /// metadata) and starts committing them. Returns the running commit (null when nothing was written yet) and the bytes
    /// that left the queue.
    /// </summary>
    private async Task<(Task<CommittedBatch>? Commit, long Released)> StartCommitAsync(bool wait, CancellationToken ct)
    {
        var batch = new List<PendingStore>();
        var placed = new List<IngestedMessage>();
        try
        {
            // Messages on their own are committed together; a pack is committed in a call of its own.
            while (_inFlight.Count > 0 && (_inFlight.Peek().Write.IsCompleted || (wait && batch.Count == 0)))
            {
                var unit = _inFlight.Peek();
                if (batch.Count > 0 && (unit.Packed || batch.Count >= options.CommitBatchSize))
                    break;
                // Dequeued before the wait: a failed write leaves the queue, and its files are released below.
                batch.AddRange(_inFlight.Dequeue().Members);
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
        return (CommitAsync(batch, placed, ct), batch.Sum(b => b.Ingested.Figures.RawLength));
    }

    private async Task<CommittedBatch> CommitAsync(List<PendingStore> batch, List<IngestedMessage> placed, CancellationToken ct)
    {
        try
        {
            return new CommittedBatch(batch, await spool.CommitAsync(account.Mailbox, placed, ct).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new UpstreamException(UpstreamErrorKind.Storage, $"could not commit {batch.Count} messages to the spool: {ex.Message}", ex);
        }
    }

    /// <summary>Waits for a commit, records its messages as seen and hands each to the caller, in order.</summary>
    private async Task FinishCommitAsync(Task<CommittedBatch> commit, CancellationToken ct)
    {
        var (batch, results) = await commit.ConfigureAwait(false);
        for (var i = 0; i < batch.Count; i++)
        {
            var entry = Record(batch[i], results[i]);
            await committed(batch[i], entry, ct).ConfigureAwait(false);
        }
    }

    /// <summary>During a failing run: the commit still running ends; what it committed is counted and recorded as seen.</summary>
    private async Task SettleCommitAsync(Task<CommittedBatch> commit)
    {
        try
        {
            var (batch, results) = await commit.ConfigureAwait(false);
            for (var i = 0; i < batch.Count; i++)
                Record(batch[i], results[i]);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Not marked seen: the next run fetches them again, and the dedup key recognises any that did commit.
            CoreLog.SettlingCommitEnded(logger, ex.Message);
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
    private async Task SettleWritesAsync()
    {
        var written = new List<PendingStore>();
        var placed = new List<IngestedMessage>();
        foreach (var unit in _inFlight)
        {
            try
            {
                await unit.Write.ConfigureAwait(false);
                written.AddRange(unit.Members);
                placed.AddRange(Placed(unit));
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                CoreLog.SettlingWriteEnded(logger, unit.Members[0].Message.Key, ex.Message);
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
                    Record(written[i], results[i]);
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Not marked seen: the next run fetches them again, and the dedup key recognises any that did commit.
            CoreLog.SettlingWrittenCommitEnded(logger, written.Count, ex.Message);
        }
        finally
        {
            while (_inFlight.Count > 0)
            {
                foreach (var item in _inFlight.Dequeue().Members)
                    await item.File.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task FlushSeenAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await ledger.MarkSeenAsync(account.Name, scope.Name, scope.Validity, _pending, timeout.Token).ConfigureAwait(false);
            _pending.Clear();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Harmless to lose: those messages are in the spool, and the next run's dedup key recognises them.
            CoreLog.SeenNotRecorded(logger, account.Name, scope.Label, _pending.Count, ex.Message);
        }
    }

    /// <summary>Counts a committed message (stored or a duplicate) and adds its seen entry to the pending ones.</summary>
    private SeenEntry Record(PendingStore item, StoreResult result)
    {
        var entry = new SeenEntry(item.Message.Key, clock.GetUtcNow(), Stored: true, result.MessageKey, item.Message.Size);
        _pending.Add(entry);
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
}
