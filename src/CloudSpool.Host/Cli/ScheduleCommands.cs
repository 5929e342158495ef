using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CloudSpool.Core.Health;
using CloudSpool.Core.Scheduling;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool schedule list|set|reset`: edit schedules while everything runs.</summary>
public static class ScheduleCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>One job's schedule as `schedule list` shows it, with the job's health (see <see cref="JobHealthEvaluator"/>).</summary>
    public sealed record ScheduleView(
        string Job, string Cron, string TimeZone, string Source, bool Enabled,
        IReadOnlyList<DateTimeOffset> NextFires, DateTimeOffset? LastRun, string? LastOutcome,
        string State, string StateReason, DateTimeOffset? LastFinished, DateTimeOffset? DueSince);

    public static Command Create(CommandContext context)
    {
        var schedule = new Command("schedule", "Show and edit job schedules; a running host applies edits within Scheduler:RefreshInterval.");
        schedule.Subcommands.Add(List(context));
        schedule.Subcommands.Add(Set(context));
        schedule.Subcommands.Add(Reset(context));
        schedule.Subcommands.Add(ScheduleExportCommand.Create(context));
        return schedule;
    }

    private static Command List(CommandContext context)
    {
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var command = new Command("list", "Each job: cron expression, time zone, where it comes from, next three fire times, last run and outcome.") { json };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var views = await ListViewsAsync(runtime, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(views, Json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            foreach (var v in views)
            {
                var next = string.Join(", ", v.NextFires.Select(t => t.ToString("yyyy-MM-dd HH:mm:ss zzz", CultureInfo.InvariantCulture)));
                var took = v.LastRun is { } from && v.LastFinished is { } to ? string.Create(CultureInfo.InvariantCulture, $" in {(to - from).TotalSeconds:F1} s") : "";
                var last = v.LastRun is { } t ? $"{t:u} {v.LastOutcome}{took}" : "never";
                await context.PrintAsync($"{v.Job}: \"{v.Cron}\" {v.TimeZone} ({v.Source}{(v.Enabled ? "" : ", disabled")}) {v.State.ToUpperInvariant()}").ConfigureAwait(false);
                await context.PrintAsync($"  next: {next}").ConfigureAwait(false);
                await context.PrintAsync($"  last run: {last}").ConfigureAwait(false);
                if (v.State is "overdue" or "failing")
                    await context.PrintAsync($"  {v.StateReason}").ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>
    /// Every job's schedule in effect (edits included), next fires, last run and health: the pull job of each account,
    /// then retention, health and forward.
    /// </summary>
    public static async Task<IReadOnlyList<ScheduleView>> ListViewsAsync(Runtime runtime, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        var now = DateTimeOffset.UtcNow;
        var grace = runtime.Options.Health.JobOverdueAfter;
        var edits = await runtime.Schedules.ListAsync(ct).ConfigureAwait(false);
        var views = new List<ScheduleView>();
        ScheduleView View(EffectiveSchedule s, bool enabled, LastJobRun? last, string? outcome)
        {
            var health = JobHealthEvaluator.Evaluate(enabled, last, after => Cron.NextFire(s.Cron, s.TimeZone, after), now, grace);
            var state = health.State == JobHealthState.NeverRun ? "never-run" : health.State.ToString().ToLowerInvariant();
            return new ScheduleView(s.Job, s.Cron, s.TimeZone, s.Source.ToString().ToLowerInvariant(), enabled,
                NextFires(s.Cron, s.TimeZone, 3), last?.Started, outcome, state, health.Reason, last?.Finished, health.DueSince);
        }
        foreach (var account in await runtime.Accounts.ListAsync(ct).ConfigureAwait(false))
        {
            var last = (await runtime.States.RecentRunsAsync(account.Name, 1, ct).ConfigureAwait(false)).FirstOrDefault();
            views.Add(View(JobSchedules.Pull(runtime.Options, account, edits), account.Enabled,
                last is null ? null : new LastJobRun(last.Started, last.Finished, last.Outcome, last.Error), last?.Outcome.ToString()));
        }
        // The jobs that are not per account, in a fixed order; each with whether it is scheduled at all.
        (EffectiveSchedule Schedule, bool Enabled)[] others =
        [
            (JobSchedules.Retention(runtime.Options, edits), runtime.Options.Retention.Scheduled),
            (JobSchedules.Health(runtime.Options, edits), true),
            (JobSchedules.Forward(runtime.Options, edits), runtime.Options.Forward.Configured),
        ];
        foreach (var (s, enabled) in others)
        {
            var last = (await runtime.JobRuns.RecentAsync(s.Job, 1, ct).ConfigureAwait(false)).FirstOrDefault();
            views.Add(View(s, enabled, last is null ? null : new LastJobRun(last.Started, last.Finished, last.Outcome, last.Error), last?.Outcome.ToString()));
        }
        return views;
    }

    private static Command Set(CommandContext context)
    {
        var job = new Argument<string>("job") { Description = "The job, e.g. pull:isp (see schedule list)" };
        var cron = new Argument<string>("cron") { Description = "Quartz cron with a seconds field, e.g. \"0 */2 * * * ?\"" };
        var zone = new Option<string?>("--tz") { Description = "Time zone, e.g. Asia/Tokyo (default: the job's current one)" };
        var command = new Command("set", "Set a job's schedule; it wins over the account's and the default until reset. Refused with the reason, changing nothing, when invalid.") { job, cron, zone };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var name = parse.GetValue(job)!;
            var expression = parse.GetValue(cron)!.Trim();
            var edits = await runtime.Schedules.ListAsync(ct).ConfigureAwait(false);
            var current = await FindAsync(runtime, name, edits, ct).ConfigureAwait(false);
            if (current is null)
            {
                await context.PrintErrorAsync($"no job named '{name}': jobs are pull:ACCOUNT, forward, retention and health (see: cloudspool schedule list); nothing changed").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            var tz = parse.GetValue(zone) ?? current.TimeZone;
            var problems = new List<string>();
            if (!Cron.IsValid(expression))
                problems.Add($"'{expression}' is not a Quartz cron expression that fires (seconds minutes hours day-of-month month day-of-week [year]), e.g. \"0 */5 * * * ?\"");
            if (!TimeZoneInfo.TryFindSystemTimeZoneById(tz, out _))
                problems.Add($"'{tz}' is not a known time zone (e.g. UTC, Europe/Berlin, Asia/Tokyo)");
            if (problems.Count > 0)
            {
                foreach (var p in problems)
                    await context.PrintErrorAsync(p).ConfigureAwait(false);
                await context.PrintErrorAsync("nothing changed.").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            await runtime.Schedules.SetAsync(new ScheduleOverride(name, expression, tz, DateTimeOffset.UtcNow), ct).ConfigureAwait(false);
            await context.PrintAsync($"{name}: \"{expression}\" {tz}; next: {string.Join(", ", NextFires(expression, tz, 3).Select(t => t.ToString("u", CultureInfo.InvariantCulture)))}").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Reset(CommandContext context)
    {
        var job = new Argument<string>("job") { Description = "The job, e.g. pull:isp" };
        var command = new Command("reset", "Drop a job's edited schedule: the account's or the configured default applies again.") { job };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var name = parse.GetValue(job)!;
            if (await FindAsync(runtime, name, null, ct).ConfigureAwait(false) is null)
            {
                await context.PrintErrorAsync($"no job named '{name}' (see: cloudspool schedule list)").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            var removed = await runtime.Schedules.ResetAsync(name, ct).ConfigureAwait(false);
            var now = (await FindAsync(runtime, name, null, ct).ConfigureAwait(false))!;
            await context.PrintAsync(removed
                ? $"{name}: edit removed; now \"{now.Cron}\" {now.TimeZone} ({now.Source.ToString().ToLowerInvariant()})"
                : $"{name}: had no edit; \"{now.Cron}\" {now.TimeZone} ({now.Source.ToString().ToLowerInvariant()})").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The schedule in effect for a job name, or null when there is no such job.</summary>
    private static async Task<EffectiveSchedule?> FindAsync(Runtime runtime, string job, IReadOnlyDictionary<string, ScheduleOverride>? edits, CancellationToken ct)
    {
        if (job == Core.Retention.RetentionRunner.Job)
            return JobSchedules.Retention(runtime.Options, edits);
        if (job == Core.Health.HealthRunner.Job)
            return JobSchedules.Health(runtime.Options, edits);
        if (job == Core.Forward.ForwardRunner.Job)
            return JobSchedules.Forward(runtime.Options, edits);
        var account = JobNames.PullAccount(job) is { } a ? await runtime.Accounts.GetAsync(a, ct).ConfigureAwait(false) : null;
        return account is null ? null : JobSchedules.Pull(runtime.Options, account, edits);
    }

    private static List<DateTimeOffset> NextFires(string cron, string zone, int count)
    {
        var result = new List<DateTimeOffset>();
        var after = DateTimeOffset.UtcNow;
        var tz = TimeZoneInfo.FindSystemTimeZoneById(zone);
        for (var i = 0; i < count && Cron.NextFire(cron, zone, after) is { } next; i++)
        {
            result.Add(TimeZoneInfo.ConvertTime(next, tz));
            after = next;
        }
        return result;
    }
}
