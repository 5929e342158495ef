using System.CommandLine;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool job run JOB`: one run, then exit; the exit code says success or failure (for cloud cron hosts).</summary>
public static class JobCommands
{
    public static Command Create(CommandContext context)
    {
        var job = new Command("job", "Run jobs once, outside the scheduler.");
        var run = new Command("run", "Run one job once and exit: 0 when it succeeded, 1 when it failed.");
        var name = new Argument<string>("job") { Description = "The job: pull" };
        name.AcceptOnlyFromAmong("pull");
        var account = new Option<string?>("--account") { Description = "Only this account (default: every enabled account)" };
        run.Arguments.Add(name);
        run.Options.Add(account);
        run.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, runtime => PullAsync(context, runtime, parse.GetValue(account), ct)));
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
                await context.Error.WriteLineAsync($"no account named '{accountName}' (see: cloudspool account list)").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            accounts = [one];
        }
        else
        {
            accounts = (await runtime.Accounts.ListAsync(ct).ConfigureAwait(false)).Where(a => a.Enabled).ToList();
            if (accounts.Count == 0)
                await context.Error.WriteLineAsync("no enabled accounts: nothing to pull (add one with: cloudspool account add)").ConfigureAwait(false);
        }

        var failed = false;
        var progress = new Progress<PullProgress>(p =>
            context.Error.WriteLine($"{p.Account}: {p.Done}/{p.Total} new messages ({p.Bytes / 1024} KiB)"));
        foreach (var account in accounts)
        {
            var record = await runtime.Engine.RunAsync(account, new PullRunRequest { IgnoreBackoff = true, Progress = progress }, ct).ConfigureAwait(false);
            await context.Out.WriteLineAsync(Describe(record)).ConfigureAwait(false);
            failed |= record.Outcome == PullOutcome.Failed;
        }
        return failed ? ExitCodes.Failed : ExitCodes.Ok;
    }

    internal static string Describe(PullRunRecord r) => r.Outcome switch
    {
        PullOutcome.Succeeded => $"{r.Account}: ok: {r.Stored} new ({r.Bytes} bytes), {r.Duplicates} already held, {r.TakenAsSeen} taken as seen, {r.DeletedUpstream} deleted upstream, {r.FailedMessages} failed",
        PullOutcome.Skipped => $"{r.Account}: skipped: {r.SkipReason}",
        _ => $"{r.Account}: FAILED ({r.ErrorKind}): {r.Error} [{r.Stored} new stored before the failure]",
    };
}
