using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>
/// A scheduled job that is one run of a runner (retention, health): a shutdown interrupts it quietly, and any other
/// failure (storage unreachable while listing or recording) is logged and left to the next fire. The runners' blob
/// leases keep other processes out; <see cref="DisallowConcurrentExecutionAttribute"/> on each job keeps this one's.
/// </summary>
public abstract class RunOnceJob(ILogger logger, string name) : IJob
{
    protected abstract Task RunOnceAsync(CancellationToken cancellationToken);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        try
        {
            await RunOnceAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            HostLog.JobInterrupted(logger, name);
        }
        catch (Exception ex)
        {
            HostLog.JobFailed(logger, ex, name);
        }
    }
}
