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
                HostLog.PullAccountGone(logger, name);
                return;
            }
            var record = await runtime.Engine.RunAsync(account, new PullRunRequest(), cancellationToken).ConfigureAwait(false);
            // New mail in the forwarded mailbox goes to the phone now, not at the forward job's next fire: the delay from
            // arrival upstream to the phone is then the pull interval plus seconds. (The forward job checks the away
            // switch itself; a forward already running takes the new mail in its next pass.)
            var forward = runtime.Options.Forward;
            if (record.Stored > 0 && forward.Configured && forward.Mailbox == account.Mailbox
                && await context.Scheduler.Exists(ForwardJob.Key, cancellationToken).ConfigureAwait(false))
            {
                await context.Scheduler.TriggerJob(ForwardJob.Key, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            HostLog.PullInterrupted(logger, name);
        }
        catch (Exception ex)
        {
            // The engine records upstream trouble itself; this is storage being unreachable while recording.
            // The job must not throw: the next fire retries.
            HostLog.PullJobFailed(logger, ex, name);
        }
    }
}
