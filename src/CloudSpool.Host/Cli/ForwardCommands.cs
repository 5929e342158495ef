using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CloudSpool.Core.Forward;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool forward on|off|status` (the away switch) and `cloudspool rules test` (a dry run of the rules).</summary>
public static class ForwardCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create(CommandContext context)
    {
        var forward = new Command("forward", "The away switch: forward new mail to the phone (Forward section of the configuration).");
        var until = new Option<string?>("--until") { Description = "Switch off by itself at this time: 18:00 (next occurrence), 2026-12-01T18:00 (Forward:TimeZone), an ISO time with offset, or a duration such as 3h or 2d" };
        var on = new Command("on", "Switch forwarding on: only mail arriving from now on is forwarded, never the backlog.") { until };
        on.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            if (!await RequireConfiguredAsync(context, runtime).ConfigureAwait(false))
                return ExitCodes.Usage;
            var zone = Zone(runtime);
            DateTimeOffset? end = null;
            if (parse.GetValue(until) is { } text)
            {
                if (!TryParseUntil(text, DateTimeOffset.UtcNow, zone, out var parsed))
                {
                    await context.PrintErrorAsync($"'{text}' is not a time in the future: expected e.g. 18:00, 2026-12-01T18:00, 2026-12-01T18:00+09:00, 3h or 2d; nothing changed").ConfigureAwait(false);
                    return ExitCodes.Usage;
                }
                end = parsed;
            }
            var state = await runtime.Forward.SwitchOnAsync(end, ct).ConfigureAwait(false);
            await context.PrintAsync($"forwarding is on for mailbox {runtime.Options.Forward.Mailbox}" +
                (end is { } e ? $" until {TimeZoneInfo.ConvertTime(e, zone):yyyy-MM-dd HH:mm zzz}" : "") +
                $"; mail already there is not forwarded (watermark {state.Watermark ?? "none: the mailbox is empty"})").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        var off = new Command("off", "Switch forwarding off at once (a running forward stops before its next send; retries are not sent).");
        off.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            await runtime.Forward.SwitchOffAsync("switched off", ct).ConfigureAwait(false);
            await context.PrintAsync("forwarding is off").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var status = new Command("status", "The switch, the last runs, and forwards that failed or wait for a retry, with their reasons.") { json };
        status.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, runtime => StatusAsync(context, runtime, parse.GetValue(json), ct)));
        forward.Subcommands.Add(on);
        forward.Subcommands.Add(off);
        forward.Subcommands.Add(status);
        return forward;
    }

    public static Command Rules(CommandContext context)
    {
        var rules = new Command("rules", "Forwarding rules (Forward:Rules in the configuration).");
        var last = new Option<int>("--last") { Description = "How many of the newest messages to judge", DefaultValueFactory = _ => 10 };
        var test = new Command("test", "Dry run: for the newest messages, what the rules decide and why, and what would be sent; sends nothing.") { last };
        test.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            if (!await RequireConfiguredAsync(context, runtime).ConfigureAwait(false))
                return ExitCodes.Usage;
            var count = parse.GetValue(last);
            if (count is < 1 or > 10000)
            {
                await context.PrintErrorAsync($"--last {count}: expected 1-10000").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            var previews = await runtime.Forward.PreviewAsync(count, ct).ConfigureAwait(false);
            foreach (var p in previews)
            {
                await context.PrintAsync($"{p.Message.MessageKey}  {p.Message.Summary.From} | {p.Message.Summary.Subject}").ConfigureAwait(false);
                await context.PrintAsync($"  {ForwardActions.Name(p.Decision.Action)}: {p.Decision.Reason}").ConfigureAwait(false);
                await context.PrintAsync($"  {p.Outcome}").ConfigureAwait(false);
            }
            await context.PrintAsync($"{previews.Count} messages judged; nothing was sent").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        rules.Subcommands.Add(test);
        return rules;
    }

    private static async Task<bool> RequireConfiguredAsync(CommandContext context, Runtime runtime)
    {
        if (runtime.Options.Forward.Configured)
            return true;
        await context.PrintErrorAsync("forwarding is not configured: set Forward:Mailbox, Forward:Sender, Forward:Destinations and Forward:Smtp (see docs/configuration.md, Forward)").ConfigureAwait(false);
        return false;
    }

    private sealed record StatusView(bool On, DateTimeOffset? Until, string? Watermark, DateTimeOffset ChangedAt, string? Note, bool InWindow,
        IReadOnlyList<Core.Retention.JobRunRecord> LastRuns, IReadOnlyDictionary<string, int> Counts, IReadOnlyList<ForwardEntry> Problems);

    private static async Task<int> StatusAsync(CommandContext context, Runtime runtime, bool json, CancellationToken ct)
    {
        var options = runtime.Options.Forward;
        var state = await runtime.ForwardControl.GetSwitchAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var zone = Zone(runtime);
        var windows = options.Windows.Select(w => ForwardWindow.TryParse(w, out var parsed, out _) ? parsed! : null).OfType<ForwardWindow>().ToList();
        var runs = await runtime.JobRuns.RecentAsync(ForwardRunner.Job, 3, ct).ConfigureAwait(false);
        var rows = options.Configured
            ? await runtime.ForwardLedger.ListAfterAsync(options.Mailbox!, state.Watermark, ct).ConfigureAwait(false)
            : [];
        var counts = rows.GroupBy(r => r.State.ToString().ToLowerInvariant()).ToDictionary(g => g.Key, g => g.Count());
        var problems = rows.Where(r => r.State is ForwardState.Failed or ForwardState.Retry or ForwardState.Sending).OrderBy(r => r.MessageKey, StringComparer.Ordinal).TakeLast(20).ToList();
        var view = new StatusView(state.IsOnAt(now), state.Until, state.Watermark, state.ChangedAt, state.Note, ForwardWindow.AnyContains(windows, now, zone), runs, counts, problems);
        if (json)
        {
            await context.Out.WriteLineAsync(JsonSerializer.Serialize(view, Json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        if (!options.Configured)
            await context.PrintAsync("forwarding is not configured (Forward:Destinations is empty)").ConfigureAwait(false);
        var onText = view.On
            ? "on" + (state.Until is { } u ? $" until {TimeZoneInfo.ConvertTime(u, zone):yyyy-MM-dd HH:mm zzz}" : "")
            : "off";
        await context.PrintAsync($"forwarding: {onText} (since {state.ChangedAt:u}: {state.Note}); mailbox {options.Mailbox}; " +
            $"to {string.Join(", ", options.Destinations.Select(d => d.Address))}").ConfigureAwait(false);
        if (windows.Count > 0)
            await context.PrintAsync($"windows: {string.Join(", ", options.Windows.Select(w => $"{w.Days} {w.Start}-{w.End}"))} ({zone.Id}); now {(view.InWindow ? "inside" : "outside: mail waits")}").ConfigureAwait(false);
        await context.PrintAsync($"backlog: messages up to {state.Watermark ?? "(none)"} are never forwarded").ConfigureAwait(false);
        await context.PrintAsync($"since switched on: {(counts.Count == 0 ? "nothing yet" : string.Join(", ", counts.Select(c => $"{c.Value} {c.Key}")))}").ConfigureAwait(false);
        foreach (var r in runs)
            await context.PrintAsync($"run {r.Started:u}: {r.Outcome.ToString().ToLowerInvariant()}: {r.Summary}{(r.Error is null ? "" : " — " + r.Error)}").ConfigureAwait(false);
        foreach (var p in problems)
            await context.PrintAsync($"  {p.MessageKey} → {p.Destination}: {p.State.ToString().ToLowerInvariant()} ({p.Attempts} attempts): {p.Reason}").ConfigureAwait(false);
        return ExitCodes.Ok;
    }

    /// <summary>The time zone of the away switch's times (Forward:TimeZone, else Pull:TimeZone).</summary>
    public static TimeZoneInfo Zone(Runtime runtime) =>
        TimeZoneInfo.FindSystemTimeZoneById(runtime.Options.Forward.TimeZone ?? runtime.Options.Pull.TimeZone);

    /// <summary>Parses `--until`: HH:mm (next occurrence), a local date and time in <paramref name="zone"/>, an ISO time with offset, or a duration (90m, 3h, 2d).</summary>
    public static bool TryParseUntil(string text, DateTimeOffset now, TimeZoneInfo zone, out DateTimeOffset until)
    {
        until = default;
        text = text.Trim();
        if (text.Length >= 2 && char.IsAsciiDigit(text[0]) && text[^1] is 'm' or 'h' or 'd'
            && int.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var amount) && amount > 0)
        {
            until = now + text[^1] switch { 'm' => TimeSpan.FromMinutes(amount), 'h' => TimeSpan.FromHours(amount), _ => TimeSpan.FromDays(amount) };
            return true;
        }
        if (TimeSpan.TryParseExact(text, @"hh\:mm", CultureInfo.InvariantCulture, out var timeOfDay))
        {
            var local = TimeZoneInfo.ConvertTime(now, zone);
            var candidate = new DateTime(local.Year, local.Month, local.Day, 0, 0, 0, DateTimeKind.Unspecified) + timeOfDay;
            var at = new DateTimeOffset(candidate, zone.GetUtcOffset(candidate));
            until = at > now ? at : at.AddDays(1);
            return true;
        }
        string[] localFormats = ["yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss"];
        if (DateTime.TryParseExact(text, localFormats, CultureInfo.InvariantCulture, DateTimeStyles.None, out var dateTime))
            until = new DateTimeOffset(dateTime, zone.GetUtcOffset(dateTime));
        else if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.None, out until))
            return false;
        return until > now;
    }
}
