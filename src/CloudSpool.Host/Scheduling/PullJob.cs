using CloudSpool.Core.Pull;
using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>
/// One scheduled pull of one account. Quartz never runs two of the same key at once in this process;
/// the engine's blob lease keeps other processes and machines out.
/// </summary>
[DisallowConcurrentExecution]
public sealed class PullJob(Runtime runtime, ILogger<PullJob> logger) : IJob
{
    public const string Group = "pull";
    public const string AccountKey = "account";

    public static JobKey KeyFor(string account) => new(account, Group);

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(AccountKey) ?? context.JobDetail.Key.Name;
        try
        {
            var account = await runtime.Accounts.GetAsync(name, cancellationToken).ConfigureAwait(false);
            if (account is null)
            {
                logger.LogWarning("{Account}: scheduled pull skipped: the account no longer exists", name);
                return;
            }
            await runtime.Engine.RunAsync(account, new PullRunRequest(), cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            logger.LogInformation("{Account}: pull interrupted by shutdown; the next run resumes where it stopped", name);
        }
        catch (Exception ex)
        {
            // The engine records upstream trouble itself; this is storage being unreachable while recording.
            // The job must not throw: the next fire retries.
            logger.LogError(ex, "{Account}: pull run could not complete or record its outcome", name);
        }
    }
}
