using System.Net;
using CloudSpool.Host.Scheduling;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host;

/// <summary>
/// Every log message of the host (structured; never a password), each with an event id unique in this assembly, by area:
/// 1-99 the process (run, telemetry), 100-199 scheduling, 200-299 the embedded Azurite, 300-399 the POP3 edge service,
/// 400-499 the status page. A new message takes the next free id of its area. Callers pass their own logger, so each
/// line keeps its caller's category.
/// </summary>
internal static partial class HostLog
{
    // The process: 1-99.

    [LoggerMessage(1, LogLevel.Information, "CloudSpool running on {Storage}; schedules refresh every {Seconds}s; Ctrl+C stops")]
    public static partial void Running(ILogger logger, string storage, double seconds);

    [LoggerMessage(2, LogLevel.Information, "CloudSpool POP3 edge running on {Storage}; Ctrl+C stops")]
    public static partial void EdgeRunning(ILogger logger, string storage);

    [LoggerMessage(3, LogLevel.Error, "the POP3 edge could not start: {Error}")]
    public static partial void EdgeCouldNotStart(ILogger logger, Exception exception, string error);

    [LoggerMessage(4, LogLevel.Information, "CloudSpool stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(5, LogLevel.Information, "exporting metrics over OTLP/HTTP to {Endpoint} every {Seconds} s")]
    public static partial void ExportingMetrics(ILogger logger, Uri endpoint, double seconds);

    // Scheduling: 100-199.

    [LoggerMessage(100, LogLevel.Information, "{Job} interrupted by shutdown; the next run continues")]
    public static partial void JobInterrupted(ILogger logger, string job);

    [LoggerMessage(101, LogLevel.Error, "{Job} run could not complete")]
    public static partial void JobFailed(ILogger logger, Exception exception, string job);

    [LoggerMessage(102, LogLevel.Warning, "{Account}: scheduled pull skipped: the account no longer exists")]
    public static partial void PullAccountGone(ILogger logger, string account);

    [LoggerMessage(103, LogLevel.Information, "{Account}: pull interrupted by shutdown; the next run resumes where it stopped")]
    public static partial void PullInterrupted(ILogger logger, string account);

    [LoggerMessage(104, LogLevel.Error, "{Account}: pull run could not complete or record its outcome")]
    public static partial void PullJobFailed(ILogger logger, Exception exception, string account);

    [LoggerMessage(105, LogLevel.Error, "could not refresh schedules from storage ({Error}); keeping the current ones")]
    public static partial void SchedulesNotRefreshed(ILogger logger, string error);

    [LoggerMessage(106, LogLevel.Error, "{Account}: not scheduled, its definition is invalid: {Errors}")]
    public static partial void AccountInvalid(ILogger logger, string account, string errors);

    [LoggerMessage(107, LogLevel.Information, "{Account}: unscheduled (removed or disabled)")]
    public static partial void AccountUnscheduled(ILogger logger, string account);

    [LoggerMessage(108, LogLevel.Information, "retention: unscheduled (no mailbox has a retention period and the repair check is off)")]
    public static partial void RetentionUnscheduled(ILogger logger);

    [LoggerMessage(109, LogLevel.Error, "{Job}: schedule \"{Cron}\" ({Zone}) is not valid; keeping the current one")]
    public static partial void ScheduleInvalid(ILogger logger, string job, string cron, string zone);

    [LoggerMessage(110, LogLevel.Information, "{Job}: scheduled \"{Cron}\" ({Zone}, {Source}), next at {Next:u}")]
    public static partial void Scheduled(ILogger logger, string job, string cron, string zone, ScheduleSource source, DateTimeOffset? next);

    private static readonly EventId ScheduleChangedEvent = new(111, nameof(ScheduleChanged));

    /// <summary>
    /// Seven values are more than LoggerMessage.Define takes, and the generator's own formatting of more uses the
    /// current culture and prints null as nothing: this line goes through the same formatter as the others instead
    /// (invariant culture, null as "(null)"), with its id in <see cref="ScheduleChangedEvent"/>.
    /// </summary>
    public static void ScheduleChanged(ILogger logger, string job, string? old, string oldZone, string cron, string zone, ScheduleSource source, DateTimeOffset? next) =>
        logger.Log(LogLevel.Information, ScheduleChangedEvent,
            "{Job}: schedule changed from \"{Old}\" ({OldZone}) to \"{Cron}\" ({Zone}, {Source}), next at {Next:u}",
            job, old, oldZone, cron, zone, source, next);

    // The embedded Azurite: 200-299.

    [LoggerMessage(200, LogLevel.Information, "using the Azurite already listening on 127.0.0.1:{BlobPort}/{TablePort} (it accepts the key of {Location})")]
    public static partial void AzuriteReused(ILogger logger, int blobPort, int tablePort, string location);

    [LoggerMessage(201, LogLevel.Information, "started Azurite on 127.0.0.1 (blob {BlobPort}, table {TablePort}), data in {Location}")]
    public static partial void AzuriteStarted(ILogger logger, int blobPort, int tablePort, string location);

    [LoggerMessage(202, LogLevel.Warning, "Azurite did not stop within 15 s; killing it")]
    public static partial void AzuriteKilled(ILogger logger);

    // The POP3 edge service: 300-399.

    [LoggerMessage(301, LogLevel.Information, "POP3 edge listening on {EndPoint}")]
    public static partial void EdgeListening(ILogger logger, IPEndPoint endPoint);

    [LoggerMessage(302, LogLevel.Error, "the POP3 edge could not start on {Listen}:{Port}; the jobs keep running without it")]
    public static partial void EdgeNotListening(ILogger logger, Exception exception, string listen, int port);

    [LoggerMessage(303, LogLevel.Information, "POP3 edge stopped")]
    public static partial void EdgeStopped(ILogger logger);

    [LoggerMessage(304, LogLevel.Warning, "POP3 edge: generated a self-signed TLS certificate {Path}, SHA-256 fingerprint {Fingerprint}; pin this fingerprint in your mail clients (it stays the same on later starts)")]
    public static partial void EdgeCertificateGenerated(ILogger logger, string path, string fingerprint);

    [LoggerMessage(305, LogLevel.Information, "POP3 edge TLS certificate {Path} (generated on the first start), SHA-256 fingerprint {Fingerprint}, valid until {NotAfter:u}")]
    public static partial void EdgeCertificateStored(ILogger logger, string path, string fingerprint, DateTime notAfter);

    [LoggerMessage(306, LogLevel.Information, "POP3 edge TLS certificate {Path} (Edge:CertificatePath), SHA-256 fingerprint {Fingerprint}, valid until {NotAfter:u}")]
    public static partial void EdgeCertificateConfigured(ILogger logger, string path, string fingerprint, DateTime notAfter);

    // The status page: 400-499.

    [LoggerMessage(401, LogLevel.Information, "status page listening on {Url}")]
    public static partial void StatusPageListening(ILogger logger, string url);

    [LoggerMessage(402, LogLevel.Error, "the status page could not start on {Listen}:{Port}; everything else keeps running without it")]
    public static partial void StatusPageNotListening(ILogger logger, Exception exception, string listen, int port);

    [LoggerMessage(403, LogLevel.Warning, "status page: nobody may log in (StatusPage:Users is empty); /healthz answers all the same")]
    public static partial void StatusPageNobodyMayLogIn(ILogger logger);

    [LoggerMessage(404, LogLevel.Warning, "status page: login refused for '{User}' from {Remote}")]
    public static partial void StatusPageLoginRefused(ILogger logger, string user, string remote);

    [LoggerMessage(405, LogLevel.Information, "status page: {User} logged in from {Remote}")]
    public static partial void StatusPageLoggedIn(ILogger logger, string user, string remote);

    [LoggerMessage(406, LogLevel.Information, "status page: {User} switched forwarding on (until {Until}; watermark {Watermark})")]
    public static partial void StatusPageSwitchedOn(ILogger logger, string user, DateTimeOffset? until, string watermark);

    [LoggerMessage(407, LogLevel.Information, "status page: {User} switched forwarding off")]
    public static partial void StatusPageSwitchedOff(ILogger logger, string user);

    [LoggerMessage(408, LogLevel.Error, "status page: {Path} failed")]
    public static partial void StatusPageRequestFailed(ILogger logger, Exception exception, string path);

    [LoggerMessage(409, LogLevel.Warning, "health endpoint: storage is not reachable: {Error}")]
    public static partial void HealthEndpointStorageUnreachable(ILogger logger, string error);

    [LoggerMessage(410, LogLevel.Information, "status page listening on {Url}, TLS certificate SHA-256 fingerprint {Fingerprint}")]
    public static partial void StatusPageListeningTls(ILogger logger, string url, string fingerprint);

    [LoggerMessage(411, LogLevel.Warning, "status page: plain HTTP on {Listen}: passwords cross the network unencrypted; set StatusPage:Https or use a TLS reverse proxy")]
    public static partial void StatusPagePlainHttpOnNetwork(ILogger logger, string listen);

    [LoggerMessage(412, LogLevel.Warning, "status page: logins from {Remote} refused for {Lockout} after {Failures} failed logins")]
    public static partial void StatusPageAddressLockedOut(ILogger logger, string remote, TimeSpan lockout, int failures);

    [LoggerMessage(413, LogLevel.Warning, "status page: logins of '{User}' refused for {Lockout} after {Failures} failed logins")]
    public static partial void StatusPageUserLockedOut(ILogger logger, string user, TimeSpan lockout, int failures);

    [LoggerMessage(414, LogLevel.Information, "status page: login for '{User}' from {Remote} refused: the {Scope} is locked out for {Left} more")]
    public static partial void StatusPageLoginLockedOut(ILogger logger, string user, string remote, string scope, TimeSpan left);

    [LoggerMessage(415, LogLevel.Information, "status page: the login cookie of '{User}' from {Remote} refused: {Reason}")]
    public static partial void StatusPageSessionRefused(ILogger logger, string user, string remote, string reason);
}
