using System.Security.Cryptography;
using System.Text;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Security;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>What `rules test` shows for one message.</summary>
public sealed record ForwardPreview(SpoolMessage Message, ForwardDecision Decision, string Outcome);

/// <summary>
/// The forward job. One runner at a time across all processes (blob lease). Each run, while the away switch is on and
/// inside the weekly windows: the mailbox's messages after the watermark and the progress cursor are decided by the
/// rules, trimmed per destination and handed to the relay, each message × destination recorded in the ledger.
/// <para>
/// Exactly once, and what a crash does: a forward is first claimed in the ledger as <see cref="ForwardState.Sending"/>
/// (a conditional write: two runners cannot both claim it), then handed to the relay, then marked
/// <see cref="ForwardState.Sent"/> right after the relay's 250, before anything else. A crash before the hand-over
/// leaves a <c>Sending</c> row of a copy that was never sent: a later run (once that row is older than twice the lease, so
/// its writer is surely gone) sends it again. SMTP has no idempotency, so the one instant that cannot be made safe is
/// between the relay's 250 and the <c>Sent</c> write (milliseconds): CloudSpool chooses at-least-once there — a copy of
/// important mail is never lost; in that window's rare case the phone receives it twice, with the same Message-ID
/// (derived from message and destination), which mail clients use to fold duplicates.
/// </para>
/// </summary>
public sealed partial class ForwardRunner(
    ForwardOptions options,
    ISpoolReader spool,
    IForwardControl control,
    IForwardLedger ledger,
    IForwardTransport transport,
    ILeaseManager leases,
    IJobRunLog runs,
    TimeProvider clock,
    ILogger<ForwardRunner> logger)
{
    public const string Job = "forward";

    /// <summary>
    /// The cursor never passes messages younger than this: a pull stamps a message's key when it fetches it and commits
    /// batches later, so a key can appear behind newer ones for a short while.
    /// </summary>
    public static readonly TimeSpan CursorLag = TimeSpan.FromMinutes(15);

    private ForwardRules? _rules;

    private ForwardRules Rules => _rules ??= ForwardRules.Compile(options);

    /// <summary>A <c>Sending</c> row older than this belongs to a dead runner.</summary>
    public TimeSpan StaleSending { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Time zone of the weekly windows (Forward:TimeZone, else Pull:TimeZone).</summary>
    public string TimeZoneId { get; init; } = "UTC";

    /// <summary>Where messages are staged while being trimmed: a directory of this user only (0700), files 0600.</summary>
    public string TempDirectory { get; init; } = PrivateFiles.DefaultTempDirectory;

    /// <summary>Switches forwarding on: the mailbox's current last key becomes the watermark, so the backlog is never sent.</summary>
    public async Task<ForwardSwitchState> SwitchOnAsync(DateTimeOffset? until, CancellationToken cancellationToken)
    {
        var watermark = await control.LastMessageKeyAsync(options.Mailbox!, cancellationToken).ConfigureAwait(false);
        var state = new ForwardSwitchState { On = true, Until = until, Watermark = watermark, ChangedAt = clock.GetUtcNow(), Note = "switched on" };
        await control.SetSwitchAsync(state, cancellationToken).ConfigureAwait(false);
        CoreLog.ForwardSwitchedOn(logger, options.Mailbox!, watermark ?? "(empty mailbox)", until);
        return state;
    }

    /// <summary>Switches forwarding off at once: a running job stops before its next send; retries are not sent.</summary>
    public async Task<ForwardSwitchState> SwitchOffAsync(string note, CancellationToken cancellationToken)
    {
        var current = await control.GetSwitchAsync(cancellationToken).ConfigureAwait(false);
        var state = current with { On = false, ChangedAt = clock.GetUtcNow(), Note = note };
        await control.SetSwitchAsync(state, cancellationToken).ConfigureAwait(false);
        return state;
    }

    /// <summary>One run; never throws except for cancellation by the caller. The outcome is recorded in the run log.</summary>
    public async Task<JobRunRecord> RunAsync(CancellationToken cancellationToken)
    {
        var started = clock.GetUtcNow();
        if (!options.Configured)
            return await RecordAsync(started, RunOutcome.Skipped, "forwarding is not configured (Forward:Destinations is empty)", null).ConfigureAwait(false);
        var lease = await leases.TryAcquireAsync(Job, cancellationToken).ConfigureAwait(false);
        if (lease is null)
            return await RecordAsync(started, RunOutcome.Skipped, "another worker is forwarding", null).ConfigureAwait(false);

        await using (lease.ConfigureAwait(false))
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.Lost);
            var tally = new Tally { HandOver = lease.Lost };
            try
            {
                var summary = await ForwardAsync(tally, linked.Token).ConfigureAwait(false);
                Telemetry.CloudSpoolMetrics.RecordForwards(tally.Sent, tally.Skipped, tally.Failed, tally.Waiting);
                var outcome = tally.RelayDown is null ? RunOutcome.Succeeded : RunOutcome.Failed;
                return await RecordAsync(started, outcome, summary, tally.RelayDown).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                CoreLog.ForwardRunFailed(logger, ex.Message);
                Telemetry.CloudSpoolMetrics.RecordForwards(tally.Sent, tally.Skipped, tally.Failed, tally.Waiting);
                return await RecordAsync(started, RunOutcome.Failed, tally.ToString(), ex.Message).ConfigureAwait(false);
            }
        }
    }

    private async Task<string> ForwardAsync(Tally tally, CancellationToken cancellationToken)
    {
        var mailbox = options.Mailbox!;
        var state = await control.GetSwitchAsync(cancellationToken).ConfigureAwait(false);
        var now = clock.GetUtcNow();
        if (state.On && !state.IsOnAt(now))
        {
            await control.SetSwitchAsync(state with { On = false, ChangedAt = now, Note = $"switched itself off at {state.Until:u} (--until)" }, cancellationToken).ConfigureAwait(false);
            return $"forwarding switched itself off at {state.Until:u}";
        }
        if (!state.On)
            return "forwarding is off";
        var windows = options.Windows.Select(w => ForwardWindow.TryParse(w, out var parsed, out _) ? parsed! : throw new ArgumentException("invalid window")).ToList();
        if (!ForwardWindow.AnyContains(windows, now, Zone()))
            return "outside the forwarding windows: new mail waits";

        var cursor = await control.GetCursorAsync(mailbox, cancellationToken).ConfigureAwait(false);
        var start = Max(state.Watermark, cursor);
        var rows = (await ledger.ListAfterAsync(mailbox, start, cancellationToken).ConfigureAwait(false))
            .ToDictionary(e => (e.MessageKey, e.Destination.ToLowerInvariant()));
        await using var session = transport.CreateSession();
        string? settledUpTo = null;
        var prefixSettled = true;
        await foreach (var message in spool.ListAsync(mailbox, start, cancellationToken).ConfigureAwait(false))
        {
            var settled = await ForwardMessageAsync(message, rows, session, tally, cancellationToken).ConfigureAwait(false);
            if (tally.Stopped is not null)
                break;
            prefixSettled &= settled && message.ReceivedAt < now - CursorLag;
            if (prefixSettled)
                settledUpTo = message.MessageKey;
        }
        if (settledUpTo is not null)
            await control.SetCursorAsync(mailbox, settledUpTo, cancellationToken).ConfigureAwait(false);
        return tally.ToString();
    }

    /// <summary>Forwards one message to every destination that still needs it; true when it is settled for all of them.</summary>
    private async Task<bool> ForwardMessageAsync(SpoolMessage message, Dictionary<(string, string), ForwardEntry> rows, IForwardSession session, Tally tally, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var pending = new List<(ForwardDestination Destination, ForwardEntry? Row)>();
        foreach (var destination in options.Destinations)
        {
            rows.TryGetValue((message.MessageKey, destination.Address!.ToLowerInvariant()), out var row);
            if (row is { IsFinal: true })
                continue;
            if (row is { State: ForwardState.Retry } && row.NextAttemptAt > now)
            {
                tally.Waiting++;
                continue;
            }
            if (row is { State: ForwardState.Sending } && now - row.UpdatedAt < StaleSending)
            {
                tally.Waiting++; // another runner may be sending it right now
                continue;
            }
            pending.Add((destination, row));
        }
        if (pending.Count == 0)
            return AllFinal(message, rows);

        var loaded = await LoadAsync(message, cancellationToken).ConfigureAwait(false);
        using (loaded.Temp)
        {
            if (loaded.Source is null)
            {
                // Its blob cannot be read right now: this message waits, with the reason in its ledger rows (status,
                // messages show), and is retried with backoff like a relay's temporary failure; the others go on.
                CoreLog.ForwardUnreadable(logger, message.MessageKey, loaded.Error!);
                foreach (var (destination, row) in pending)
                {
                    var written = await ledger.TryWriteAsync(options.Mailbox!, Unreadable(message, destination, row, loaded.Error!, now), cancellationToken).ConfigureAwait(false);
                    if (written is not null)
                        rows[(message.MessageKey, destination.Address!.ToLowerInvariant())] = written;
                    if (written?.IsFinal == true)
                        tally.Failed++;
                    else
                        tally.Waiting++;
                }
                return AllFinal(message, rows);
            }
            var decision = Rules.Decide(ForwardFacts.Create(loaded.Source, message.SourceAccount, message.RawLength, message.Summary));
            var allSettled = true;
            foreach (var (destination, row) in pending)
            {
                var result = await ForwardOneAsync(message, loaded.Source, decision, destination, row, session, tally, cancellationToken).ConfigureAwait(false);
                if (result is not null)
                    rows[(message.MessageKey, destination.Address!.ToLowerInvariant())] = result;
                allSettled &= result?.IsFinal == true;
                if (tally.Stopped is not null)
                    return false;
            }
            return allSettled && AllFinal(message, rows);
        }
    }

    /// <summary>
    /// Records what the relay answered to a hand-over. A row left 'sending' is sent again by a later run once it is
    /// stale, so after a 250 the record is retried while storage does not answer (an outage of Azurite or the storage
    /// account), with backoff, for at least <see cref="StaleSending"/> and two minutes; neither a lost lease nor a
    /// shutdown cancels it (a graceful stop waits for it). Found by the soak: a copy the relay accepted a moment before
    /// Azurite stopped reached the phone twice.
    /// </summary>
    private async Task<ForwardEntry?> RecordHandOverAsync(ForwardEntry done)
    {
        var giveUpAt = clock.GetUtcNow() + (StaleSending > TimeSpan.FromMinutes(2) ? StaleSending : TimeSpan.FromMinutes(2));
        var pause = TimeSpan.FromSeconds(1);
        while (true)
        {
            try
            {
                using var attempt = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                return await ledger.TryWriteAsync(options.Mailbox!, done with { UpdatedAt = clock.GetUtcNow() }, attempt.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (clock.GetUtcNow() + pause < giveUpAt)
            {
                CoreLog.ForwardRecordRetry(logger, done.MessageKey, done.Destination, ex.Message);
                await Task.Delay(pause, clock, CancellationToken.None).ConfigureAwait(false);
                pause = pause * 2 > TimeSpan.FromSeconds(10) ? TimeSpan.FromSeconds(10) : pause * 2;
            }
        }
    }

    /// <summary>The ledger row of a forward whose message could not be read: retried later, given up after the attempts.</summary>
    private ForwardEntry Unreadable(SpoolMessage message, ForwardDestination destination, ForwardEntry? row, string error, DateTimeOffset now)
    {
        var attempts = (row?.Attempts ?? 0) + 1;
        var givenUp = attempts >= options.MaxAttempts;
        return new ForwardEntry
        {
            MessageKey = message.MessageKey,
            Destination = destination.Address!,
            State = givenUp ? ForwardState.Failed : ForwardState.Retry,
            Reason = givenUp
                ? $"given up after {attempts} attempts: its stored bytes could not be read: {error}"
                : $"its stored bytes could not be read (attempt {attempts}), retried later: {error}",
            SmtpMessageId = row?.SmtpMessageId,
            Attempts = attempts,
            UpdatedAt = now,
            NextAttemptAt = givenUp ? null : now + Backoff(attempts),
            Version = row?.Version,
        };
    }

    private bool AllFinal(SpoolMessage message, Dictionary<(string, string), ForwardEntry> rows) =>
        options.Destinations.All(d => rows.TryGetValue((message.MessageKey, d.Address!.ToLowerInvariant()), out var r) && r.IsFinal);

    private async Task<ForwardEntry?> ForwardOneAsync(SpoolMessage message, ForwardSource source, ForwardDecision decision, ForwardDestination destination,
        ForwardEntry? row, IForwardSession session, Tally tally, CancellationToken cancellationToken)
    {
        var to = MailboxAddress.Parse(destination.Address!);
        var sender = MailboxAddress.Parse(options.Sender!);
        var messageId = MessageIdFor(message, destination.Address!, sender.Domain);
        var entry = new ForwardEntry
        {
            MessageKey = message.MessageKey,
            Destination = destination.Address!,
            State = ForwardState.Skipped,
            Reason = decision.Reason,
            SmtpMessageId = messageId,
            Attempts = row?.Attempts ?? 0,
            UpdatedAt = clock.GetUtcNow(),
            Version = row?.Version,
        };
        if (!decision.Forwards)
        {
            tally.Skipped++;
            return await ledger.TryWriteAsync(options.Mailbox!, entry, cancellationToken).ConfigureAwait(false);
        }

        var addressing = new ForwardAddressing(sender, to, messageId, message.MessageKey, message.ReceivedAt);
        var copy = decision.Action == ForwardAction.ForwardAsIs
            ? ForwardTrimmer.AsIs(source, addressing)
            : ForwardTrimmer.Trim(source, new TrimLimits(destination.MaxBytes, destination.KeepAttachmentTypes), addressing);
        if (copy.Message is null)
        {
            tally.Skipped++;
            return await ledger.TryWriteAsync(options.Mailbox!, entry with { Reason = $"{decision.Reason}; but {copy.SkipReason}" }, cancellationToken).ConfigureAwait(false);
        }

        // Switching off stops at once: checked right before every hand-over, retries included.
        var state = await control.GetSwitchAsync(cancellationToken).ConfigureAwait(false);
        if (!state.IsOnAt(clock.GetUtcNow()))
        {
            tally.Stopped = "forwarding was switched off during the run";
            return null;
        }

        var claimed = await ledger.TryWriteAsync(options.Mailbox!, entry with
        {
            State = ForwardState.Sending,
            Reason = $"{decision.Reason}; handing over to the relay",
            Attempts = entry.Attempts + 1,
        }, cancellationToken).ConfigureAwait(false);
        if (claimed is null)
        {
            tally.Waiting++; // another runner changed the row: it owns this forward
            return null;
        }

        // A hand-over once begun is finished even when the host is stopping (SIGTERM): the relay may already hold the copy,
        // and giving up on its reply would leave the claim to be sent again. Only a lost lease (another runner may take
        // over) abandons it.
        var sent = await session.SendAsync(copy.Message, sender, to, tally.HandOver).ConfigureAwait(false);
        var details = Describe(copy);
        var done = sent.Status switch
        {
            SendStatus.Sent => claimed with { State = ForwardState.Sent, Reason = $"{decision.Reason}; sent {details}: {sent.Detail}", NextAttemptAt = null },
            SendStatus.Permanent => claimed with { State = ForwardState.Failed, Reason = $"refused by the relay, not retried: {sent.Detail}", NextAttemptAt = null },
            _ when claimed.Attempts >= options.MaxAttempts => claimed with { State = ForwardState.Failed, Reason = $"given up after {claimed.Attempts} attempts: {sent.Detail}", NextAttemptAt = null },
            _ => claimed with { State = ForwardState.Retry, Reason = $"temporary failure (attempt {claimed.Attempts}), retried later: {sent.Detail}", NextAttemptAt = clock.GetUtcNow() + Backoff(claimed.Attempts) },
        };
        // The relay has answered: that answer must be recorded whatever happens next (see RecordHandOverAsync).
        var written = await RecordHandOverAsync(done).ConfigureAwait(false);
        switch (sent.Status)
        {
            case SendStatus.Sent:
                tally.Sent++;
                CoreLog.ForwardSent(logger, message.MessageKey, destination.Address!, copy.Size);
                break;
            case SendStatus.Permanent:
                tally.Failed++;
                CoreLog.ForwardRefused(logger, message.MessageKey, destination.Address!, sent.Detail);
                break;
            default:
                tally.Waiting++;
                CoreLog.ForwardTemporary(logger, message.MessageKey, destination.Address!, sent.Detail);
                if (sent.ConnectionFailed)
                {
                    tally.RelayDown = sent.Detail;
                    tally.Stopped = "the relay is unusable";
                }
                break;
        }
        return written;
    }

    private static string Describe(TrimmedMessage copy)
    {
        var parts = new List<string> { ForwardTrimmer.FormatSize(copy.Size) };
        if (copy.Truncated)
            parts.Add("text cut");
        if (copy.Removed.Count > 0)
            parts.Add($"{copy.Removed.Count} attachment(s) removed");
        return "(" + string.Join(", ", parts) + ")";
    }

    private TimeSpan Backoff(int attempts)
    {
        var factor = Math.Pow(2, Math.Min(attempts - 1, 30));
        var delay = TimeSpan.FromTicks((long)Math.Min(options.BaseBackoff.Ticks * factor, options.MaxBackoff.Ticks));
        return delay < options.BaseBackoff ? options.BaseBackoff : delay;
    }

    /// <summary>The copy's Message-ID: the same for every attempt of one message to one destination.</summary>
    public static string MessageIdFor(SpoolMessage message, string destination, string domain)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{message.Mailbox}\n{message.MessageKey}\n{destination.ToLowerInvariant()}"));
        return $"{Convert.ToHexStringLower(hash)[..32]}.forward@{(string.IsNullOrEmpty(domain) ? "cloudspool.invalid" : domain)}";
    }

    private TimeZoneInfo Zone() => TimeZoneInfo.FindSystemTimeZoneById(TimeZoneId);

    private static string? Max(string? a, string? b) => a is null ? b : b is null ? a : string.CompareOrdinal(a, b) >= 0 ? a : b;

    private sealed record Loaded(ForwardSource? Source, string? Error, IDisposable? Temp);

    /// <summary>Stages the raw bytes in a temporary file (a 50 MB message is never whole in memory) and parses them.</summary>
    private async Task<Loaded> LoadAsync(SpoolMessage message, CancellationToken cancellationToken)
    {
        // As ingest stages: a directory of this user only (0700, another user's refused) and a new 0600 file.
        var temp = new FileStream(Path.Combine(PrivateFiles.EnsureDirectory(TempDirectory), $"forward-{Guid.NewGuid():N}.eml"),
            PrivateFiles.NewFileOptions(FileAccess.ReadWrite, FileOptions.DeleteOnClose, 65536));
        try
        {
            var raw = await spool.OpenRawAsync(message, cancellationToken).ConfigureAwait(false);
            await using (raw.ConfigureAwait(false))
                await raw.CopyToAsync(temp, cancellationToken).ConfigureAwait(false);
            temp.Position = 0;
            return new Loaded(ForwardSource.Load(temp, cancellationToken), null, temp);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The blob store's own exceptions are not known here (no Azure in Core): any failure to read is this message's.
            await temp.DisposeAsync().ConfigureAwait(false);
            return new Loaded(null, ex.Message, null);
        }
    }

    private Task<JobRunRecord> RecordAsync(DateTimeOffset started, RunOutcome outcome, string summary, string? error) =>
        runs.RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), outcome, summary, error));

    private sealed class Tally
    {
        public int Sent;
        public int Skipped;
        public int Failed;
        public int Waiting;
        public string? Stopped;
        public string? RelayDown;

        /// <summary>Cancels a hand-over to the relay: the run's lease lost, never the host stopping.</summary>
        public CancellationToken HandOver { get; init; }

        public override string ToString() =>
            $"{Sent} sent, {Skipped} skipped, {Failed} refused, {Waiting} waiting" + (Stopped is null ? "" : $"; stopped: {Stopped}");
    }
}
