using CloudSpool.Core.Pull;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core;

/// <summary>
/// Every log message of the core (structured; never a password), each with an event id unique in this assembly, by area:
/// 100-199 the pull, 200-299 forwarding, 300-399 retention and the repair check, 400-499 health. A new message takes
/// the next free id of its area. Callers pass their own logger, so each line keeps its caller's category.
/// </summary>
internal static partial class CoreLog
{
    // The pull: 100-199.

    [LoggerMessage(100, LogLevel.Information, "{Account}: run skipped: {Reason}")]
    public static partial void RunSkipped(ILogger logger, string account, string reason);

    private static readonly EventId PulledEvent = new(101, nameof(Pulled));

    /// <summary>
    /// Seven values are more than LoggerMessage.Define takes, and the generator's own formatting of more uses the
    /// current culture ("1,5s" under some locales) and prints null as nothing: this line goes through the same formatter
    /// as the others instead (invariant culture, null as "(null)"), with its id in <see cref="PulledEvent"/>.
    /// </summary>
    public static void Pulled(ILogger logger, string account, int stored, long bytes, int duplicates, int deleted, int failed, double seconds) =>
        logger.Log(LogLevel.Information, PulledEvent,
            "{Account}: pulled {Stored} new messages ({Bytes} bytes), {Duplicates} already held, {Deleted} deleted upstream, {Failed} failed, in {Seconds:F1}s",
            account, stored, bytes, duplicates, deleted, failed, seconds);

    [LoggerMessage(102, LogLevel.Error, "{Account}: pull failed ({Kind}, {Streak} in a row, next try after {Next:u}): {Error}")]
    public static partial void PullFailed(ILogger logger, string account, UpstreamErrorKind? kind, int streak, DateTimeOffset? next, string? error);

    [LoggerMessage(103, LogLevel.Information, "{Account}{Scope}: first run takes {Count} existing messages as seen")]
    public static partial void FirstRunTakesExisting(ILogger logger, string account, string scope, int count);

    [LoggerMessage(104, LogLevel.Warning, "{Account}{Scope}: UIDVALIDITY changed from {Old} to {New}; re-checking {Count} messages against the spool")]
    public static partial void ValidityChanged(ILogger logger, string account, string scope, string? old, string @new, int count);

    [LoggerMessage(105, LogLevel.Warning, "{Account}{Scope}: message {Key} is listed with {Size} bytes, but the message seen under that key had {SeenSize}: the server reused the key; fetching it as new")]
    public static partial void KeyReused(ILogger logger, string account, string scope, string key, long size, long seenSize);

    [LoggerMessage(106, LogLevel.Information, "{Account}{Scope}: {Done}/{Total} new messages, {Bytes} bytes so far")]
    public static partial void Progress(ILogger logger, string account, string scope, int done, int total, long bytes);

    [LoggerMessage(107, LogLevel.Warning, "{Account}{Scope}: message {Key} could not be fetched ({Error}); it stays upstream and is retried next run")]
    public static partial void FetchFailed(ILogger logger, string account, string scope, string key, string error);

    [LoggerMessage(108, LogLevel.Warning, "{Account}{Scope}: message {Key} is malformed ({Error}); storing it as received")]
    public static partial void Malformed(ILogger logger, string account, string scope, string key, string? error);

    [LoggerMessage(109, LogLevel.Debug, "commit during a failing run ended with {Error}")]
    public static partial void SettlingCommitEnded(ILogger logger, string error);

    [LoggerMessage(110, LogLevel.Debug, "write of {Key} during a failing run ended with {Error}")]
    public static partial void SettlingWriteEnded(ILogger logger, string key, string error);

    [LoggerMessage(111, LogLevel.Debug, "commit of {Count} written messages during a failing run ended with {Error}")]
    public static partial void SettlingWrittenCommitEnded(ILogger logger, int count, string error);

    [LoggerMessage(112, LogLevel.Warning, "{Account}{Scope}: could not record {Count} stored messages as seen ({Error}); the next run re-checks them")]
    public static partial void SeenNotRecorded(ILogger logger, string account, string scope, int count, string error);

    [LoggerMessage(113, LogLevel.Warning, "{Account}{Scope}: could not forget the seen entries of {Count} messages deleted upstream ({Error})")]
    public static partial void SeenNotForgotten(ILogger logger, string account, string scope, int count, string error);

    // Forwarding: 200-299.

    [LoggerMessage(200, LogLevel.Information, "forward: switched on for {Mailbox}; watermark {Watermark}, until {Until}")]
    public static partial void ForwardSwitchedOn(ILogger logger, string mailbox, string watermark, DateTimeOffset? until);

    [LoggerMessage(201, LogLevel.Information, "forward: {Key} sent to {Destination} ({Size} bytes)")]
    public static partial void ForwardSent(ILogger logger, string key, string destination, long size);

    [LoggerMessage(202, LogLevel.Warning, "forward: {Key} to {Destination} refused permanently: {Detail}")]
    public static partial void ForwardRefused(ILogger logger, string key, string destination, string detail);

    [LoggerMessage(203, LogLevel.Warning, "forward: {Key} to {Destination} failed for now, retried later: {Detail}")]
    public static partial void ForwardTemporary(ILogger logger, string key, string destination, string detail);

    [LoggerMessage(204, LogLevel.Warning, "forward: {Key} cannot be read now, tried again next run: {Error}")]
    public static partial void ForwardUnreadable(ILogger logger, string key, string error);

    [LoggerMessage(205, LogLevel.Warning, "forward: {Key} to {Destination}: the relay's answer could not be recorded yet, retrying: {Error}")]
    public static partial void ForwardRecordRetry(ILogger logger, string key, string destination, string error);

    [LoggerMessage(206, LogLevel.Error, "forward run failed: {Error}")]
    public static partial void ForwardRunFailed(ILogger logger, string error);

    // Retention and the repair check: 300-399.

    [LoggerMessage(300, LogLevel.Information, "retention: {Mailbox}: removed {Count} messages ingested before {Cutoff:u} ({Days} days)")]
    public static partial void RetentionRemoved(ILogger logger, string mailbox, int count, DateTimeOffset cutoff, int days);

    [LoggerMessage(301, LogLevel.Error, "retention failed: {Error}")]
    public static partial void RetentionFailed(ILogger logger, string error);

    [LoggerMessage(302, LogLevel.Warning, "repair: {Mailbox}: {Missing} rows without their blob, {Orphans} blobs without a row ({Deleted} deleted)")]
    public static partial void RepairFound(ILogger logger, string mailbox, int missing, int orphans, int deleted);

    [LoggerMessage(303, LogLevel.Information, "retention: {Mailbox}: views kept small: {Swept} markers of removed messages dropped, {Merged} records merged")]
    public static partial void ViewsKeptSmall(ILogger logger, string mailbox, int swept, int merged);

    [LoggerMessage(304, LogLevel.Warning, "retention: {Mailbox}: the views could not be kept small: {Error}")]
    public static partial void ViewUpkeepFailed(ILogger logger, string mailbox, string error);

    // Health: 400-499.

    [LoggerMessage(400, LogLevel.Warning, "health: {Account}: alert raised ({Condition}): {Reason}")]
    public static partial void AlertRaised(ILogger logger, string account, string condition, string reason);

    [LoggerMessage(401, LogLevel.Information, "health: {Account}: {Condition} cleared")]
    public static partial void AlertCleared(ILogger logger, string account, string condition);

    [LoggerMessage(402, LogLevel.Error, "health check failed: {Error}")]
    public static partial void HealthCheckFailed(ILogger logger, string error);
}
