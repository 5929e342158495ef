using System.CommandLine;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool job run JOB`: one run, then exit; the exit code says success or failure (for cloud cron hosts).</summary>
public static class JobCommands
{
    public static Command Create(CommandContext context)
    {
        var job = new Command("job", "Run jobs once, outside the scheduler.");
        var run = new Command("run", "Run one job once and exit: 0 when it succeeded, 1 when it failed.");
        var name = new Argument<string>("job") { Description = "The job: pull, forward, retention or health" };
        name.AcceptOnlyFromAmong("pull", "forward", "retention", "health");
        var account = new Option<string?>("--account") { Description = "pull: only this account (default: every enabled account)" };
        var repair = new Option<bool>("--repair") { Description = "retention: instead of removing old mail, check every row has its blob and every blob its row" };
        var fix = new Option<bool>("--fix") { Description = "retention --repair: delete blobs no row names (older than an hour)" };
        run.Arguments.Add(name);
        run.Options.Add(account);
        run.Options.Add(repair);
        run.Options.Add(fix);
        run.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, runtime => parse.GetValue(name) switch
        {
            "retention" when parse.GetValue(repair) => RepairAsync(context, runtime, parse.GetValue(fix), ct),
            "retention" => RetentionAsync(context, runtime, ct),
            "health" => HealthAsync(context, runtime, ct),
            "forward" => ForwardAsync(context, runtime, ct),
            _ => PullAsync(context, runtime, parse.GetValue(account), ct),
        }));
        job.Subcommands.Add(run);
        return job;
    }

    private static async Task<int> PullAsync(CommandContext context, Runtime runtime, string? accountName, CancellationToken ct)
    {
        IReadOnlyList<AccountDefinition> accounts;
        if (accountName is not null)
        {
            var one = await runtime.Accounts.GetAsync(accountName, ct).ConfigureAwait(false);
            if (one is null)
            {
                await context.PrintErrorAsync($"no account named '{accountName}' (see: cloudspool account list)").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            accounts = [one];
        }
        else
        {
            accounts = (await runtime.Accounts.ListAsync(ct).ConfigureAwait(false)).Where(a => a.Enabled).ToList();
            if (accounts.Count == 0)
                await context.PrintErrorAsync("no enabled accounts: nothing to pull (add one with: cloudspool account add)").ConfigureAwait(false);
        }

        var failed = false;
        var progress = new Progress<PullProgress>(p =>
            context.Error.WriteLine($"{p.Account}: {p.Done}/{p.Total} new messages ({p.Bytes / 1024} KiB)"));
        foreach (var account in accounts)
        {
            var record = await runtime.Engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true, Progress = progress }, ct).ConfigureAwait(false);
            await context.PrintAsync(Describe(record)).ConfigureAwait(false);
            failed |= record.Outcome == RunOutcome.Failed;
        }
        return failed ? ExitCodes.Failed : ExitCodes.Ok;
    }

    private static async Task<int> RetentionAsync(CommandContext context, Runtime runtime, CancellationToken ct) =>
        await ReportAsync(context, await runtime.Retention.RunAsync(await runtime.RetentionDaysAsync(ct).ConfigureAwait(false), ct, runtime.Options.Retention.Repair).ConfigureAwait(false)).ConfigureAwait(false);

    private static async Task<int> ForwardAsync(CommandContext context, Runtime runtime, CancellationToken ct) =>
        await ReportAsync(context, await runtime.Forward.RunAsync(ct).ConfigureAwait(false)).ConfigureAwait(false);

    /// <summary>Prints a job run's outcome as one line ("JOB: ok: ...") and turns it into the exit code.</summary>
    private static async Task<int> ReportAsync(CommandContext context, Core.Retention.JobRunRecord record)
    {
        await context.PrintAsync(record.Outcome switch
        {
            RunOutcome.Succeeded => $"{record.Job}: ok: {record.Summary}",
            RunOutcome.Skipped => $"{record.Job}: skipped: {record.Summary}",
            _ => $"{record.Job}: FAILED: {record.Error} [{record.Summary}]",
        }).ConfigureAwait(false);
        return record.Outcome == RunOutcome.Failed ? ExitCodes.Failed : ExitCodes.Ok;
    }

    private static async Task<int> HealthAsync(CommandContext context, Runtime runtime, CancellationToken ct)
    {
        var report = await runtime.RunHealthAsync(ct).ConfigureAwait(false);
        foreach (var a in report.Accounts)
            await context.PrintAsync($"{a.Account}: {a.State.ToString().ToUpperInvariant()}: {a.Reason}").ConfigureAwait(false);
        // The exit code tells whether the check ran; what it found is in the output, status and the alert mail.
        return await ReportAsync(context, report.Run).ConfigureAwait(false);
    }

    private static async Task<int> RepairAsync(CommandContext context, Runtime runtime, bool fix, CancellationToken ct)
    {
        var checks = await runtime.Retention.CheckAsync((await runtime.RetentionDaysAsync(ct).ConfigureAwait(false)).Keys, fix, ct).ConfigureAwait(false);
        var consistent = true;
        foreach (var c in checks)
        {
            await context.PrintAsync($"{c.Mailbox}: {c.Messages} messages, {c.Blobs} blobs: {(c.Consistent ? "consistent" : "NOT consistent")}").ConfigureAwait(false);
            foreach (var key in c.RowsWithoutBlob)
                await context.PrintAsync($"  message {key}: its blob is missing").ConfigureAwait(false);
            foreach (var blob in c.BlobsWithoutRow)
                await context.PrintAsync($"  blob {blob}: no message names it{(fix ? "" : " (--fix deletes it)")}").ConfigureAwait(false);
            if (c.BlobsDeleted > 0)
                await context.PrintAsync($"  deleted {c.BlobsDeleted} unreferenced blobs").ConfigureAwait(false);
            consistent &= c.RowsWithoutBlob.Count == 0 && (c.BlobsWithoutRow.Count == 0 || c.BlobsDeleted == c.BlobsWithoutRow.Count);
        }
        return consistent ? ExitCodes.Ok : ExitCodes.Failed;
    }

    internal static string Describe(PullRunRecord r) => r.Outcome switch
    {
        RunOutcome.Succeeded => $"{r.Account}: ok: {r.Stored} new ({r.Bytes} bytes), {r.Duplicates} already held, {r.TakenAsSeen} taken as seen, {r.DeletedUpstream} deleted upstream, {r.FailedMessages} failed",
        RunOutcome.Skipped => $"{r.Account}: skipped: {r.SkipReason}",
        _ => $"{r.Account}: FAILED ({r.ErrorKind}): {r.Error} [{r.Stored} new stored before the failure]",
    };
}
