using CloudSpool.Core.Accounts;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Scheduling;

/// <summary>
/// Keeps the Quartz schedule equal to the accounts in storage: a running host picks up added,
/// removed and re-scheduled accounts within the refresh interval, without a restart.
/// </summary>
public sealed class ScheduleSync(ISchedulerFactory schedulers, Runtime runtime, ILogger<ScheduleSync> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = runtime.Options.Scheduler.RefreshInterval;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await SyncOnceAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Storage unreachable: keep the current schedule and try again next interval.
                HostLog.SchedulesNotRefreshed(logger, ex.Message);
            }
            try
            {
                await Task.Delay(interval, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One reconciliation pass; public for tests.</summary>
    public async Task SyncOnceAsync(CancellationToken cancellationToken)
    {
        var scheduler = await schedulers.GetScheduler(cancellationToken).ConfigureAwait(false);
        var accounts = await runtime.Accounts.ListAsync(cancellationToken).ConfigureAwait(false);
        var edits = await runtime.Schedules.ListAsync(cancellationToken).ConfigureAwait(false);
        var wanted = new Dictionary<JobKey, AccountDefinition>();
        foreach (var account in accounts)
        {
            var validation = await runtime.StoredAccountValidator.ValidateAsync(account, cancellationToken).ConfigureAwait(false);
            if (!validation.IsValid)
            {
                HostLog.AccountInvalid(logger, account.Name,
                    string.Join("; ", validation.Errors.Select(e => $"{e.PropertyName}: {e.ErrorMessage}")));
                continue;
            }
            if (account.Enabled)
                wanted[PullJob.KeyFor(account.Name)] = account;
        }

        var existing = await scheduler.GetJobKeys(GroupMatcher<JobKey>.GroupEquals(PullJob.Group), cancellationToken).ConfigureAwait(false);
        foreach (var key in existing.Where(k => !wanted.ContainsKey(k)))
        {
            await scheduler.DeleteJob(key, cancellationToken).ConfigureAwait(false);
            HostLog.AccountUnscheduled(logger, key.Name);
        }

        foreach (var (key, account) in wanted)
        {
            await EnsureAsync(scheduler, key, JobSchedules.Pull(runtime.Options, account, edits),
                () => JobBuilder.Create<PullJob>().WithIdentity(key).UsingJobData(PullJob.AccountKey, account.Name).Build(), cancellationToken).ConfigureAwait(false);
        }

        await EnsureAsync(scheduler, HealthJob.Key, JobSchedules.Health(runtime.Options, edits),
            () => JobBuilder.Create<HealthJob>().WithIdentity(HealthJob.Key).Build(), cancellationToken).ConfigureAwait(false);

        if (runtime.Options.Retention.Scheduled)
        {
            await EnsureAsync(scheduler, RetentionJob.Key, JobSchedules.Retention(runtime.Options, edits),
                () => JobBuilder.Create<RetentionJob>().WithIdentity(RetentionJob.Key).Build(), cancellationToken).ConfigureAwait(false);
        }
        else if (await scheduler.DeleteJob(RetentionJob.Key, cancellationToken).ConfigureAwait(false))
        {
            HostLog.RetentionUnscheduled(logger);
        }

        if (runtime.Options.Forward.Configured)
        {
            await EnsureAsync(scheduler, ForwardJob.Key, JobSchedules.Forward(runtime.Options, edits),
                () => JobBuilder.Create<ForwardJob>().WithIdentity(ForwardJob.Key).Build(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Schedules a job, or reschedules it when its expression or zone changed; an invalid schedule keeps the current one.</summary>
    private async Task EnsureAsync(IScheduler scheduler, JobKey key, EffectiveSchedule schedule, Func<IJobDetail> createJob, CancellationToken cancellationToken)
    {
        var (cron, zone) = (schedule.Cron, schedule.TimeZone);
        if (!Cron.IsValid(cron) || !TimeZoneInfo.TryFindSystemTimeZoneById(zone, out var timeZone))
        {
            HostLog.ScheduleInvalid(logger, schedule.Job, cron, zone);
            return;
        }
        var triggerKey = new TriggerKey(key.Name, key.Group);
        var current = await scheduler.GetTrigger(triggerKey, cancellationToken).ConfigureAwait(false) as ICronTrigger;
        if (current is not null && current.CronExpressionString == cron && current.TimeZone.Id == timeZone.Id)
            return;

        var trigger = TriggerBuilder.Create()
            .WithIdentity(triggerKey)
            .ForJob(key)
            // Later than this, a fire counts as missed, and FireAndProceed runs the job once instead of once per fire.
            .WithMisfireThreshold(runtime.Options.Scheduler.MisfireThreshold)
            .WithCronSchedule(cron, b => b.InTimeZone(timeZone)
                // Host asleep or down at fire time: run once on return, not once per missed fire.
                .WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed))
            .Build();
        if (current is null)
        {
            await scheduler.ScheduleJob(createJob(), [trigger], new ScheduleJobOptions { Replace = true }, cancellationToken).ConfigureAwait(false);
            HostLog.Scheduled(logger, schedule.Job, cron, zone, schedule.Source, Cron.NextFire(cron, zone, DateTimeOffset.UtcNow));
        }
        else
        {
            await scheduler.RescheduleJob(triggerKey, trigger, cancellationToken).ConfigureAwait(false);
            HostLog.ScheduleChanged(logger, schedule.Job,
                current.CronExpressionString, current.TimeZone.Id, cron, zone, schedule.Source, Cron.NextFire(cron, zone, DateTimeOffset.UtcNow));
        }
    }
}
