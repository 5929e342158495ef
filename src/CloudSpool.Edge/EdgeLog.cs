using System.Net;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// The edge's log events (structured; never a password), each with an event id unique in this assembly: 1-39 in the
/// order they were added (the next new one takes 23), 40 the marker sweep's policy.
/// </summary>
internal static partial class EdgeLog
{
    [LoggerMessage(1, LogLevel.Information, "{Client} logged in from {Remote}; reads mailbox {Mailbox}")]
    public static partial void LoggedIn(ILogger logger, string client, IPEndPoint? remote, string mailbox);

    [LoggerMessage(2, LogLevel.Warning, "login refused for {Login} from {Remote}: {Reason}")]
    public static partial void LoginRefused(ILogger logger, string login, IPEndPoint? remote, string reason);

    [LoggerMessage(3, LogLevel.Error, "the user store could not be read for {Login}")]
    public static partial void UserStoreFailed(ILogger logger, Exception exception, string login);

    [LoggerMessage(4, LogLevel.Information, "{Client}: a second session was refused ([IN-USE]): another client identity reads the shared-delete mailbox")]
    public static partial void InUse(ILogger logger, string client);

    [LoggerMessage(5, LogLevel.Error, "{Client}: the view of mailbox {Mailbox} could not be read")]
    public static partial void SnapshotFailed(ILogger logger, Exception exception, string client, string mailbox);

    [LoggerMessage(6, LogLevel.Information, "{Client}: session opened on mailbox {Mailbox}: {Count} messages ({Hidden} hidden for this client)")]
    public static partial void Opened(ILogger logger, string client, string mailbox, int count, int hidden);

    [LoggerMessage(7, LogLevel.Warning, "{Client}: message {MessageKey} of mailbox {Mailbox} could not be opened; only its RETR/TOP fails")]
    public static partial void OpenFailed(ILogger logger, Exception exception, string client, string mailbox, string messageKey);

    [LoggerMessage(8, LogLevel.Information, "{Client}: {Count} messages of mailbox {Mailbox} hidden for this client")]
    public static partial void Hidden(ILogger logger, string client, string mailbox, int count);

    [LoggerMessage(9, LogLevel.Warning, "mailbox {Mailbox}: storage did not answer in time, serving the local index as of {LastSync}")]
    public static partial void ServingStaleIndex(ILogger logger, Exception exception, string mailbox, DateTimeOffset? lastSync);

    [LoggerMessage(10, LogLevel.Warning, "{Client}: storage did not answer; using the view of mailbox {Mailbox} as last read")]
    public static partial void ServingCachedView(ILogger logger, Exception exception, string client, string mailbox);

    [LoggerMessage(11, LogLevel.Warning, "{Client}: the session lease could not be taken (storage unreachable); only this edge process keeps the one-session rule")]
    public static partial void SessionLeaseUnavailable(ILogger logger, Exception exception, string client);

    [LoggerMessage(12, LogLevel.Information, "mailbox {Mailbox}: index synced ({Added} new, {Removed} removed, full listing: {Full}); {Count} messages")]
    public static partial void IndexSynced(ILogger logger, string mailbox, int added, int removed, bool full, int count);

    [LoggerMessage(13, LogLevel.Warning, "index sync failed; the edge serves its local index and retries")]
    public static partial void SyncFailed(ILogger logger, Exception exception);

    [LoggerMessage(14, LogLevel.Warning, "message {MessageKey} could not be fetched into the cache ahead of time")]
    public static partial void PrefetchFailed(ILogger logger, Exception exception, string messageKey);

    [LoggerMessage(15, LogLevel.Warning, "cached message {Sha256} could not be evicted")]
    public static partial void EvictFailed(ILogger logger, Exception exception, string sha256);

    [LoggerMessage(16, LogLevel.Warning, "the user store is not reachable; {Login} is checked against the user as last read")]
    public static partial void UsingCachedUser(ILogger logger, Exception exception, string login);

    [LoggerMessage(17, LogLevel.Warning, "the edge state folder {Directory} is in use by another process: this edge keeps its index in memory and reads Blob directly")]
    public static partial void StateDirectoryBusy(ILogger logger, Exception exception, string directory);

    [LoggerMessage(18, LogLevel.Information, "{Client}: {Count} hidden-markers of messages retention removed from mailbox {Mailbox} were dropped")]
    public static partial void MarkersSwept(ILogger logger, string client, string mailbox, int count);

    [LoggerMessage(20, LogLevel.Information, "{Client}: a new login took the session on mailbox {Mailbox} over; it ends without applying its deletions")]
    public static partial void TakenOver(ILogger logger, string client, string mailbox);

    [LoggerMessage(21, LogLevel.Information, "{Client}: a new login takes over the session on mailbox {Mailbox} held by another edge process")]
    public static partial void TakingOver(ILogger logger, string client, string mailbox);

    [LoggerMessage(40, LogLevel.Information, "hidden-markers of removed messages are kept: {Reason}")]
    public static partial void MarkerSweepNotPermitted(ILogger logger, string reason);

    [LoggerMessage(19, LogLevel.Warning, "{Client}: hidden-markers of removed messages of mailbox {Mailbox} could not be dropped; tried again at a later login")]
    public static partial void MarkerSweepFailed(ILogger logger, Exception exception, string client, string mailbox);

    [LoggerMessage(22, LogLevel.Warning, "the cached copy of message {MessageKey} ({Sha256}) failed its proof ({Mismatch}): dropped, read from storage again")]
    public static partial void CachedCopyDamaged(ILogger logger, string messageKey, string sha256, string mismatch);

    [LoggerMessage(41, LogLevel.Information, "view {View} of mailbox {Mailbox}: {Count} small records merged")]
    public static partial void ViewCompacted(ILogger logger, string view, string mailbox, int count);

    [LoggerMessage(42, LogLevel.Warning, "view {View} of mailbox {Mailbox} could not be compacted; tried again at a later login")]
    public static partial void ViewCompactionFailed(ILogger logger, Exception exception, string view, string mailbox);
}
