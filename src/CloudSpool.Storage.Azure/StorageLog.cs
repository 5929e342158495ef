using Microsoft.Extensions.Logging;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Every log message of the Azure storage layer (structured), each with an event id unique in this assembly, by area:
/// 100-199 blob leases. A new message takes the next free id of its area (or opens the next hundred for a new area).
/// Callers pass their own logger, so each line keeps its caller's category.
/// </summary>
internal static partial class StorageLog
{
    // Blob leases: 100-199.

    [LoggerMessage(100, LogLevel.Error, "lease {Lease} could not be renewed ({Status} {Code}); stopping the work it guards")]
    public static partial void LeaseNotRenewed(ILogger logger, string lease, int status, string? code);

    [LoggerMessage(101, LogLevel.Warning, "lease {Lease} could not be released ({Error}); it will expire")]
    public static partial void LeaseNotReleased(ILogger logger, string lease, string error);
}
