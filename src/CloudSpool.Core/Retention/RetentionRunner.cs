using CloudSpool.Core.Leases;
using CloudSpool.Core.Scheduling;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Retention;

/// <summary>What the scheduled retention run does about leftovers of crashes (rows without blobs, blobs without rows).</summary>
public enum RepairMode
{
    /// <summary>No check.</summary>
    Off,

    /// <summary>Check every mailbox and report what is inconsistent; a row without its blob fails the run.</summary>
    Report,

    /// <summary>As <see cref="Report"/>, and delete blobs no row names (older than an hour, so no ingest still writing them).</summary>
    Fix,
}

/// <summary>
/// Removes mail older than each mailbox's retention from Blob and Table together, and (on request) checks
/// that every row has its blob and every blob its row. One runner at a time across all processes (blob lease).
/// </summary>
public sealed class RetentionRunner(ISpoolMaintenance spool, ILeaseManager leases, IJobRunLog runs, TimeProvider clock, ILogger<RetentionRunner> logger)
{
    public const string Job = "retention";

    /// <summary>When set, every run also keeps the per-client views of each mailbox small (see <see cref="ViewUpkeep"/>).</summary>
    public ViewUpkeep? Views { get; init; }

    /// <summary>
    /// Removes, per mailbox, the messages ingested more than its retention (days) ago (0 keeps everything); then,
    /// unless <paramref name="repair"/> is off, checks every mailbox for leftovers of crashes under the same lease.
    /// </summary>
    public async Task<JobRunRecord> RunAsync(IReadOnlyDictionary<string, int> retentionDays, CancellationToken cancellationToken, RepairMode repair = RepairMode.Off)
    {
        var started = clock.GetUtcNow();
        var lease = await leases.TryAcquireAsync(Job, cancellationToken).ConfigureAwait(false);
        if (lease is null)
            return await RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), RunOutcome.Skipped, "another worker is running retention", null)).ConfigureAwait(false);

        await using (lease.ConfigureAwait(false))
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lease.Lost);
            var removed = new Dictionary<string, int>(StringComparer.Ordinal);
            try
            {
                foreach (var (mailbox, days) in retentionDays.Where(r => r.Value > 0).OrderBy(r => r.Key, StringComparer.Ordinal))
                {
                    var cutoff = started - TimeSpan.FromDays(days);
                    var count = 0;
                    await foreach (var message in spool.ListOlderThanAsync(mailbox, cutoff, linked.Token).ConfigureAwait(false))
                    {
                        await spool.RemoveAsync(message, linked.Token).ConfigureAwait(false);
                        count++;
                    }
                    removed[mailbox] = count;
                    CoreLog.RetentionRemoved(logger, mailbox, count, cutoff, days);
                }
                var summary = removed.Count == 0 ? "no mailbox has a retention period" : string.Join(", ", removed.Select(r => $"{r.Key}: {r.Value} removed"));
                summary += await KeepViewsSmallAsync(retentionDays.Keys, linked.Token).ConfigureAwait(false);
                string? error = null;
                if (repair != RepairMode.Off)
                {
                    var checks = await CheckAsync(retentionDays.Keys, repair == RepairMode.Fix, linked.Token).ConfigureAwait(false);
                    var lost = checks.Sum(c => c.RowsWithoutBlob.Count);
                    var orphans = checks.Sum(c => c.BlobsWithoutRow.Count);
                    var deleted = checks.Sum(c => c.BlobsDeleted);
                    summary += $"; repair check: {lost} messages without their blob, {orphans} blobs without a message ({deleted} deleted)";
                    if (lost > 0)
                        error = "messages whose blob is missing: " + string.Join(", ", checks.Where(c => c.RowsWithoutBlob.Count > 0).Select(c => $"{c.Mailbox}: {string.Join(" ", c.RowsWithoutBlob.Take(10))}"));
                }
                return await RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), error is null ? RunOutcome.Succeeded : RunOutcome.Failed, summary, error)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                CoreLog.RetentionFailed(logger, ex.Message);
                var summary = string.Join(", ", removed.Select(r => $"{r.Key}: {r.Value} removed"));
                return await RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), RunOutcome.Failed, summary, ex.Message)).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Runs <see cref="Views"/> on every mailbox; returns what to add to the summary (nothing when there was nothing to
    /// do). A mailbox whose views could not be kept small is logged and named, and does not fail the run: the mail is
    /// safe either way, and the next run tries again.
    /// </summary>
    private async Task<string> KeepViewsSmallAsync(IEnumerable<string> mailboxes, CancellationToken cancellationToken)
    {
        if (Views is null)
            return "";
        var (swept, merged) = (0, 0);
        var failed = new List<string>();
        foreach (var mailbox in mailboxes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            try
            {
                var (s, m) = await Views.RunAsync(mailbox, cancellationToken).ConfigureAwait(false);
                if (s + m > 0)
                    CoreLog.ViewsKeptSmall(logger, mailbox, s, m);
                (swept, merged) = (swept + s, merged + m);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                CoreLog.ViewUpkeepFailed(logger, mailbox, ex.Message);
                failed.Add($"{mailbox} ({ex.Message})");
            }
        }
        var text = swept + merged > 0 ? $"; views: {swept} markers of removed messages dropped, {merged} records merged" : "";
        return failed.Count > 0 ? text + "; views not kept small: " + string.Join(", ", failed) : text;
    }

    /// <summary>Checks (and with <paramref name="fix"/>, repairs) each mailbox; young unreferenced blobs are left to the ingest writing them.</summary>
    public async Task<IReadOnlyList<SpoolCheck>> CheckAsync(IEnumerable<string> mailboxes, bool fix, CancellationToken cancellationToken, TimeSpan? graceAge = null)
    {
        var result = new List<SpoolCheck>();
        foreach (var mailbox in mailboxes.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
        {
            var check = await spool.CheckAsync(mailbox, graceAge ?? TimeSpan.FromHours(1), fix, cancellationToken).ConfigureAwait(false);
            if (!check.Consistent)
                CoreLog.RepairFound(logger, mailbox, check.RowsWithoutBlob.Count, check.BlobsWithoutRow.Count, check.BlobsDeleted);
            result.Add(check);
        }
        return result;
    }

    private Task<JobRunRecord> RecordAsync(JobRunRecord record) => runs.RecordAsync(record);
}
