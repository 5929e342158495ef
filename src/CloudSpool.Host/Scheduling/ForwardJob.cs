using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>The scheduled forward run; the runner's blob lease keeps other processes out.</summary>
[DisallowConcurrentExecution]
public sealed partial class ForwardJob(Runtime runtime, ILogger<ForwardJob> logger) : IJob
{
    public static readonly JobKey Key = new("forward", "forward");

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        try
        {
            await runtime.Forward.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            LogInterrupted(logger);
        }
        catch (Exception ex)
        {
            // Storage unreachable while recording the run: the next fire retries.
            LogFailed(logger, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "forward interrupted by shutdown; the next run continues")]
    private static partial void LogInterrupted(ILogger logger);

    [LoggerMessage(Level = LogLevel.Error, Message = "forward run could not complete")]
    private static partial void LogFailed(ILogger logger, Exception ex);
}
