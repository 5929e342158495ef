using System.Net;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>The edge's log events (structured; never a password).</summary>
internal static partial class EdgeLog
{
    [LoggerMessage(1, LogLevel.Information, "{Client} logged in from {Remote}; reads mailbox {Mailbox}")]
    public static partial void LoggedIn(ILogger logger, string client, IPEndPoint? remote, string mailbox);

    [LoggerMessage(2, LogLevel.Warning, "login refused for {Login} from {Remote}: {Reason}")]
    public static partial void LoginRefused(ILogger logger, string login, IPEndPoint? remote, string reason);

    [LoggerMessage(3, LogLevel.Error, "the user store could not be read for {Login}")]
    public static partial void UserStoreFailed(ILogger logger, Exception exception, string login);

    [LoggerMessage(4, LogLevel.Information, "{Client}: a second session was refused ([IN-USE])")]
    public static partial void InUse(ILogger logger, string client);

    [LoggerMessage(5, LogLevel.Error, "{Client}: the view of mailbox {Mailbox} could not be read")]
    public static partial void SnapshotFailed(ILogger logger, Exception exception, string client, string mailbox);

    [LoggerMessage(6, LogLevel.Information, "{Client}: session opened on mailbox {Mailbox}: {Count} messages ({Hidden} hidden for this client)")]
    public static partial void Opened(ILogger logger, string client, string mailbox, int count, int hidden);

    [LoggerMessage(7, LogLevel.Warning, "{Client}: message {MessageKey} of mailbox {Mailbox} could not be opened; only its RETR/TOP fails")]
    public static partial void OpenFailed(ILogger logger, Exception exception, string client, string mailbox, string messageKey);

    [LoggerMessage(8, LogLevel.Information, "{Client}: {Count} messages of mailbox {Mailbox} hidden for this client")]
    public static partial void Hidden(ILogger logger, string client, string mailbox, int count);
}
