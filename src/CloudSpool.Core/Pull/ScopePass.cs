using System.Diagnostics;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Pull;

/// <summary>
/// One pass over one scope of an upstream account (the POP3 maildrop, or an IMAP folder): the listing is compared with
/// the seen ledger, new messages are fetched one at a time and handed to a <see cref="SpoolWritePipeline"/>, and
/// messages are marked for deletion upstream only once their stored copy is committed.
/// </summary>
internal sealed class ScopePass(
    ISpool spool,
    IPullLedger ledger,
    PullEngineOptions options,
    TimeProvider clock,
    ILogger logger,
    Action ensureRoomForMail)
{
    public async Task RunAsync(AccountDefinition account, IUpstreamSession session, string scopeName, PullRunRequest request, RunCounters run,
        UpstreamDeletions deletions, CancellationToken ct)
    {
        var listing = await session.OpenScopeAsync(scopeName, ct).ConfigureAwait(false);
        var scope = new ScopeRef(scopeName, listing.Validity);
        var knownValidity = await ledger.GetScopeValidityAsync(account.Name, scopeName, ct).ConfigureAwait(false);
        var now = clock.GetUtcNow();

        if (knownValidity is null && account.FirstRun == FirstRunMode.SkipExisting)
        {
            // First run, "only new mail": take everything there now as seen, store nothing, delete nothing.
            var entries = listing.Messages.Select(m => new SeenEntry(m.Key, now, Stored: false, MessageKey: null, m.Size)).ToList();
            await ledger.MarkSeenAsync(account.Name, scopeName, listing.Validity, entries, ct).ConfigureAwait(false);
            await ledger.SetScopeValidityAsync(account.Name, scopeName, listing.Validity, ct).ConfigureAwait(false);
            run.TakenAsSeen += entries.Count;
            CoreLog.FirstRunTakesExisting(logger, account.Name, scope.Label, entries.Count);
            await session.CloseScopeAsync(ct).ConfigureAwait(false);
            return;
        }

        if (knownValidity is not null && knownValidity != listing.Validity)
        {
            // IMAP UIDVALIDITY changed (RFC 3501 section 2.3.1.1): the old UIDs mean nothing now. Messages are
            // fetched again, and the mailbox's dedup key recognises those it already holds: none becomes new mail.
            CoreLog.ValidityChanged(logger, account.Name, scope.Label, knownValidity, listing.Validity, listing.Messages.Count);
        }

        var seen = await ledger.LoadSeenAsync(account.Name, scopeName, listing.Validity, ct).ConfigureAwait(false);
        RefuseUidlEntriesWithoutUidl(account, listing, seen);
        var failedBefore = (await ledger.ListMessageFailuresAsync(account.Name, ct).ConfigureAwait(false))
            .Where(f => f.Scope == scopeName).Select(f => f.Key).ToHashSet(StringComparer.Ordinal);

        var review = ListingReview.Of(listing.Messages, seen, account.Leave, now);
        foreach (var (message, entry) in review.Reused)
        {
            CoreLog.KeyReused(logger, account.Name, scope.Label, message.Key, message.Size, entry.Size);
        }
        foreach (var message in review.StoredToDelete)
            await deletions.MarkAsync(session, scope, message, ct).ConfigureAwait(false);
        if (review.Learned.Count > 0)
            await ledger.MarkSeenAsync(account.Name, scopeName, listing.Validity, review.Learned, ct).ConfigureAwait(false);

        await FetchNewAsync(account, session, scope, review.Unseen, failedBefore, request, run, deletions, ct).ConfigureAwait(false);

        // Seen entries of messages no longer listed are of no use, and a POP3 server may give their UIDLs to new mail
        // (IMAP never reuses a UID within a UIDVALIDITY). Even if a server hid a message for a while, the dedup key
        // would keep it from being stored twice when it comes back.
        var listed = listing.Messages.Select(m => m.Key).ToHashSet(StringComparer.Ordinal);
        var gone = seen.Keys.Where(k => !listed.Contains(k)).ToList();
        if (gone.Count > 0)
            await ledger.ForgetSeenAsync(account.Name, scopeName, listing.Validity, gone, ct).ConfigureAwait(false);
        if (knownValidity is not null && knownValidity != listing.Validity)
        {
            var stale = await ledger.LoadSeenAsync(account.Name, scopeName, knownValidity, ct).ConfigureAwait(false);
            await ledger.ForgetSeenAsync(account.Name, scopeName, knownValidity, stale.Keys.ToList(), ct).ConfigureAwait(false);
        }
        if (knownValidity != listing.Validity)
            await ledger.SetScopeValidityAsync(account.Name, scopeName, listing.Validity, ct).ConfigureAwait(false);
        var expunged = await session.CloseScopeAsync(ct).ConfigureAwait(false);
        await deletions.ConfirmAsync(expunged).ConfigureAwait(false);
    }

    /// <summary>
    /// Refuses to pull a POP3 maildrop that lists no UIDL (its keys are header hashes) while the ledger holds messages
    /// taken as fetched under their UIDL and never stored here (imported from another tool's record, or a first run
    /// that skipped them): no key matches them, so they would be fetched again as new mail, and their entries forgotten
    /// as gone. Nothing is fetched, deleted or forgotten; once the ledger holds header-hash keys (a run under a new
    /// account name with first run skip), the leftover UIDL entries are forgotten as usual.
    /// </summary>
    private static void RefuseUidlEntriesWithoutUidl(AccountDefinition account, ScopeListing listing, IReadOnlyDictionary<string, SeenEntry> seen)
    {
        if (!listing.Messages.Any(m => m.Key.StartsWith(UpstreamScopes.Pop3HeaderPrefix, StringComparison.Ordinal))
            || seen.Keys.Any(k => k.StartsWith(UpstreamScopes.Pop3HeaderPrefix, StringComparison.Ordinal)))
            return;
        var byUidl = seen.Values.Count(e => !e.Stored && e.Key.StartsWith(UpstreamScopes.Pop3UidlPrefix, StringComparison.Ordinal));
        if (byUidl > 0)
            throw new UpstreamException(UpstreamErrorKind.Protocol,
                $"{account.Host} offers no UIDL, but {byUidl} messages are recorded by their UIDL as fetched before (imported from another tool, or taken as seen by a first run): "
                + "without UIDL they cannot be recognised and would be fetched again, so nothing is fetched or deleted. "
                + $"Ask the provider for UIDL, or `account add` the account under another name with --first-run skip (every message now on the server is taken as fetched) "
                + $"and `account remove {account.Name}`, which would refuse every run");
    }

    /// <summary>
    /// Fetching is sequential on the upstream session. Writing the bytes overlaps with it (a bounded number of messages
    /// and bytes at a time); metadata is committed in batches; a message is marked for deletion only after its own commit.
    /// </summary>
    private async Task FetchNewAsync(AccountDefinition account, IUpstreamSession session, ScopeRef scope, List<UpstreamMessage> unseen,
        HashSet<string> failedBefore, PullRunRequest request, RunCounters run, UpstreamDeletions deletions, CancellationToken ct)
    {
        session.PlanFetches(unseen.Where(m => m.Size <= options.MaxMessageBytes).ToList());
        var pipeline = new SpoolWritePipeline(spool, ledger, options, clock, logger, account, scope, run, async (item, entry, token) =>
        {
            if (failedBefore.Contains(item.Message.Key))
                await ledger.ClearMessageFailureAsync(account.Name, scope.Name, item.Message.Key, token).ConfigureAwait(false);
            // Safe: this message's bytes and metadata are committed; its seen entry is written before QUIT.
            if (account.Leave.ShouldDelete(entry.FirstSeen, item.Message.Size, entry.FirstSeen))
                await deletions.MarkAsync(session, scope, item.Message, token).ConfigureAwait(false);
        });
        var progress = Stopwatch.StartNew();
        var measured = Stopwatch.StartNew();
        var done = 0;
        try
        {
            foreach (var message in unseen)
            {
                ct.ThrowIfCancellationRequested();
                if (measured.Elapsed >= options.CapacityCheckInterval)
                {
                    // What was fetched so far is still written and committed (the failing run's settling), never deleted upstream.
                    ensureRoomForMail();
                    measured.Restart();
                }
                var fetched = await FetchOneAsync(account, session, scope, message, run, ct).ConfigureAwait(false);
                done++;
                if (fetched is not null)
                    pipeline.Add(fetched, ct);
                await pipeline.AdvanceAsync(ct).ConfigureAwait(false);

                if (progress.Elapsed >= options.ProgressInterval)
                {
                    progress.Restart();
                    request.Progress?.Report(new PullProgress(account.Name, scope.Name, done, unseen.Count, run.Bytes));
                    CoreLog.Progress(logger, account.Name, scope.Label, done, unseen.Count, run.Bytes);
                }
            }
            await pipeline.DrainAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            await pipeline.SettleAsync(stopping: ct.IsCancellationRequested).ConfigureAwait(false);
        }
    }

    /// <summary>Fetches one message into a staged file, meters and summarises it; null when the server refused it (recorded, retried next run).</summary>
    private async Task<PendingStore?> FetchOneAsync(AccountDefinition account, IUpstreamSession session, ScopeRef scope, UpstreamMessage message, RunCounters run, CancellationToken ct)
    {
        if (message.Size > options.MaxMessageBytes)
        {
            var error = $"message is {message.Size} bytes, larger than the limit of {options.MaxMessageBytes}; left upstream";
            await ledger.RecordMessageFailureAsync(account.Name, scope.Name, message.Key, error, ct).ConfigureAwait(false);
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
                CoreLog.FetchFailed(logger, account.Name, scope.Label, message.Key, ex.Message);
                await ledger.RecordMessageFailureAsync(account.Name, scope.Name, message.Key, ex.Message, ct).ConfigureAwait(false);
                run.FailedMessages++;
                await file.DisposeAsync().ConfigureAwait(false);
                return null;
            }

            var content = file.Seal();
            var figures = file.Figures;
            var summary = MessageSummarizer.Summarize(content, ct);
            content.Position = 0;
            if (summary.Malformed)
                CoreLog.Malformed(logger, account.Name, scope.Label, message.Key, summary.ParseError);
            var ingested = new IngestedMessage(figures, summary, DedupKey.For(summary.MessageId, figures), account.Name, message.Key, clock.GetUtcNow());
            return new PendingStore(message, file, content, ingested);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>
/// A scope's listing compared with its seen ledger (a pure function of both). A listed message is the one its seen entry
/// records only if its size matches too: a key is unique only while its message exists (RFC 1939 section 7), and a
/// server whose UID state was reset (a migrated mailbox, a rebuilt index) gives new mail the UIDLs of messages deleted
/// long ago. Such a message is fetched as new; the dedup key still recognises a true duplicate. Messages stored earlier
/// that the leave policy now wants gone (older than N days, or a deletion that never reached the server because the
/// connection dropped before QUIT) are deleted only when they are the message stored.
/// </summary>
internal sealed record ListingReview(
    List<UpstreamMessage> Unseen,
    List<(UpstreamMessage Message, SeenEntry Entry)> Reused,
    List<UpstreamMessage> StoredToDelete,
    List<SeenEntry> Learned)
{
    public static ListingReview Of(IReadOnlyList<UpstreamMessage> listed, IReadOnlyDictionary<string, SeenEntry> seen, LeavePolicy leave, DateTimeOffset now)
    {
        var review = new ListingReview([], [], [], []);
        foreach (var message in listed)
        {
            if (!seen.TryGetValue(message.Key, out var entry))
            {
                review.Unseen.Add(message);
            }
            else if (!entry.MatchesSize(message.Size))
            {
                review.Reused.Add((message, entry));
                review.Unseen.Add(message);
            }
            else if (entry.Stored && leave.ShouldDelete(entry.FirstSeen, message.Size, now))
            {
                review.StoredToDelete.Add(message);
            }
            else if (entry.Size == SeenEntry.UnknownSize)
            {
                // Imported without a size: from now on the key is known with its size, so a reused key is told apart.
                review.Learned.Add(entry with { Size = message.Size });
            }
        }
        return review;
    }
}
