using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>The scheduled retention run (with its repair check).</summary>
[DisallowConcurrentExecution]
public sealed class RetentionJob(Runtime runtime, ILogger<RetentionJob> logger) : RunOnceJob(logger, "retention")
{
    public static readonly JobKey Key = new("retention", "maintenance");

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var days = await runtime.RetentionDaysAsync(cancellationToken).ConfigureAwait(false);
        await runtime.Retention.RunAsync(days, cancellationToken, runtime.Options.Retention.Repair).ConfigureAwait(false);
    }
}
