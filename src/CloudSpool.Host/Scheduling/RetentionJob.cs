using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>The scheduled retention run; the runner's blob lease keeps other processes out.</summary>
[DisallowConcurrentExecution]
public sealed class RetentionJob(Runtime runtime, ILogger<RetentionJob> logger) : IJob
{
    public static readonly JobKey Key = new("retention", "maintenance");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        try
        {
            var days = await runtime.RetentionDaysAsync(cancellationToken).ConfigureAwait(false);
            await runtime.Retention.RunAsync(days, cancellationToken, runtime.Options.Retention.Repair).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            logger.LogInformation("retention interrupted by shutdown; the next run continues");
        }
        catch (Exception ex)
        {
            // Storage unreachable while listing accounts or recording: the next fire retries.
            logger.LogError(ex, "retention run could not complete");
        }
    }
}
