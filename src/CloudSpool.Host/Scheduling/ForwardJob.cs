using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>The scheduled forward run; the runner's blob lease keeps other processes out.</summary>
[DisallowConcurrentExecution]
public sealed class ForwardJob(Runtime runtime, ILogger<ForwardJob> logger) : RunOnceJob(logger, "forward")
{
    public static readonly JobKey Key = new("forward", "forward");

    protected override Task RunOnceAsync(CancellationToken cancellationToken) => runtime.Forward.RunAsync(cancellationToken);
}
