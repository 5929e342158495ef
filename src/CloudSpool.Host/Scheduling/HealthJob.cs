using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>The scheduled health check.</summary>
[DisallowConcurrentExecution]
public sealed class HealthJob(Runtime runtime, ILogger<HealthJob> logger) : RunOnceJob(logger, "health check")
{
    public static readonly JobKey Key = new("health", "maintenance");

    protected override Task RunOnceAsync(CancellationToken cancellationToken) => runtime.RunHealthAsync(cancellationToken);
}
