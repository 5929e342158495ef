using System.CommandLine;
using System.Text.Json;
using CloudSpool.Core.Pull;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool status`: per-account health, so "no new mail" and "fetching is broken" always look different.</summary>
public static class StatusCommand
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>An account's state in plain words.</summary>
    public sealed record AccountStatus(
        string Account,
        string State,
        bool Enabled,
        DateTimeOffset? LastAttempt,
        DateTimeOffset? LastSuccess,
        DateTimeOffset? LastNewMail,
        int FailureStreak,
        string? LastError,
        string? LastErrorKind,
        DateTimeOffset? NextAttemptAfter,
        int? UpstreamMessages,
        long? UpstreamBytes,
        IReadOnlyList<MessageFailure> FailingMessages,
        int TodayMessages,
        long TodayBytes,
        long? QuotaBytes,
        long? QuotaUsedBytes,
        bool QuotaWarning,
        string Reason)
    {
        /// <summary>Why messages the leave policy wants gone are still upstream; null when none are.</summary>
        public string? LeftFlagged { get; init; }
    }

    public static Command Create(CommandContext context)
    {
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var command = new Command("status", "Per-account health: state, last success, failure streak, last error, messages that fail; then each scheduled job (ok, failing, overdue). --json: the accounts (jobs: schedule list --json).") { json };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var result = await CollectAsync(runtime, ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(result, Json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            foreach (var a in result)
            {
                await context.PrintAsync($"{a.Account}: {a.State.ToUpperInvariant()}  last success {Time(a.LastSuccess)}, last new mail {Time(a.LastNewMail)}, upstream {a.UpstreamMessages?.ToString() ?? "?"} messages, today {a.TodayMessages} new ({a.TodayBytes} bytes)").ConfigureAwait(false);
                if (a.QuotaBytes is { } limit)
                    await context.PrintAsync($"  upstream mailbox {Core.Health.HealthEvaluator.DescribeQuota((a.QuotaUsedBytes ?? 0, limit))} full{(a.QuotaWarning ? ": NEARLY FULL, it will refuse new mail when full" : "")}").ConfigureAwait(false);
                if (a.LeftFlagged is { } flagged)
                    await context.PrintAsync($"  {flagged}").ConfigureAwait(false);
                if (a.FailureStreak > 0)
                    await context.PrintAsync($"  {a.FailureStreak} failed runs in a row ({a.LastErrorKind}): {a.LastError}; next try after {Time(a.NextAttemptAfter)}").ConfigureAwait(false);
                foreach (var f in a.FailingMessages)
                    await context.PrintAsync($"  message {f.Key}{(f.Scope.Length > 0 ? " in " + f.Scope : "")} failed {f.Attempts} times: {f.Error}").ConfigureAwait(false);
            }
            // The embedded store's ceiling (none on a storage account).
            if (runtime.StoreGauge?.Measure() is { } store)
                await context.PrintAsync($"store: {store.Level.ToString().ToUpperInvariant()}  {store.Problem ?? "embedded Azurite: " + store.Describe()}").ConfigureAwait(false);
            // The edge's blob cache on this machine, as the edge last wrote its figures.
            if (ReadCacheFigures(runtime) is { } cache)
                await context.PrintAsync($"edge cache: {cache.Describe()} (as of {Time(cache.At)})").ConfigureAwait(false);
            // The jobs too: a schedule whose trigger stopped firing is trouble even when every account looks fine.
            foreach (var job in await ScheduleCommands.ListViewsAsync(runtime, ct).ConfigureAwait(false))
            {
                await context.PrintAsync($"job {job.Job}: {job.State.ToUpperInvariant()}  {job.StateReason}; next {Time(job.NextFires.Count > 0 ? job.NextFires[0] : null)}").ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>Every account's status now (also shown by the status page).</summary>
    public static async Task<IReadOnlyList<AccountStatus>> CollectAsync(Runtime runtime, CancellationToken ct)
    {
        var result = new List<AccountStatus>();
        var now = DateTimeOffset.UtcNow;
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, TimeZoneInfo.FindSystemTimeZoneById(runtime.Options.Pull.TimeZone)).DateTime);
        foreach (var account in await runtime.Accounts.ListAsync(ct).ConfigureAwait(false))
        {
            var s = await runtime.States.GetStateAsync(account.Name, ct).ConfigureAwait(false);
            var failures = await runtime.Ledger.ListMessageFailuresAsync(account.Name, ct).ConfigureAwait(false);
            var health = Core.Health.HealthEvaluator.Evaluate(account, s, now, runtime.HealthThresholds);
            var quota = Core.Health.HealthEvaluator.QuotaUse(account, s);
            var pulledToday = s?.Today == today;
            result.Add(new AccountStatus(account.Name, StateName(health.State), account.Enabled, s?.LastAttempt, s?.LastSuccess, s?.LastNewMail,
                s?.FailureStreak ?? 0, s?.LastError, s?.LastErrorKind?.ToString(), s?.NextAttemptAfter, s?.UpstreamMessages, s?.UpstreamBytes, failures,
                pulledToday ? s!.TodayMessages : 0, pulledToday ? s!.TodayBytes : 0, quota?.Limit, quota?.Used,
                health.Alerts.Contains(Core.Health.HealthEvaluator.QuotaCondition), health.Reason)
            {
                LeftFlagged = Core.Health.HealthEvaluator.LeftFlaggedNote(s),
            });
        }
        return result;
    }

    /// <summary>A health state as `status` and the health endpoint name it: ok, failing, stale, disabled, never-run.</summary>
    public static string StateName(Core.Health.AccountHealthState state) => state switch
    {
        Core.Health.AccountHealthState.NeverRun => "never-run",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary>The figures the edge on this machine last wrote of its cache; null when there are none.</summary>
    private static CloudSpool.Edge.CacheFigures? ReadCacheFigures(Runtime runtime)
    {
        var path = CloudSpool.Edge.BlobCache.FiguresPath(Path.Combine(runtime.EdgeStateDirectory(), "cache"));
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<CloudSpool.Edge.CacheFigures>(File.ReadAllText(path)) : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string Time(DateTimeOffset? t) => t?.ToString("u", System.Globalization.CultureInfo.InvariantCulture) ?? "never";
}
