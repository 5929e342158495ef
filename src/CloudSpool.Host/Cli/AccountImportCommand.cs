using System.CommandLine;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Import;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Host.Configuration;
using CloudSpool.Host.Import;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool account import --from fetchmail|mpop|getmail [FILE...] [--mailbox M] [--state PATH] [--dry-run]`.</summary>
public static class AccountImportCommand
{
    public static Command Create(CommandContext context)
    {
        var from = new Option<string>("--from") { Description = "The tool the configuration is for: fetchmail, mpop or getmail", Required = true };
        from.AcceptOnlyFromAmong("fetchmail", "mpop", "getmail");
        var files = new Argument<string[]>("file")
        {
            Description = "Configuration files (default: ~/.fetchmailrc; ~/.mpoprc or ~/.config/mpop/config; ~/.config/getmail/getmailrc or ~/.getmail/getmailrc). getmail: one rc file per account",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var mailbox = new Option<string?>("--mailbox") { Description = "Mailbox for accounts whose configuration names no local user (fetchmail's 'is NAME here' names it)" };
        var state = new Option<string?>("--state") { Description = "Where the old tool's record of fetched mail is, if not where the configuration says: fetchmail's .fetchids file (fetchmail -i), mpop's UIDLs file, getmail's directory (--getmaildir; default: the rc file's)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Print what would be created and imported as seen, and every setting not mapped; write nothing" };
        var command = new Command("import", "Create accounts from a fetchmail, mpop or getmail configuration, with what the tool already fetched marked as seen.")
        {
            from, files, mailbox, state, dryRun,
        };
        command.SetAction((parse, ct) =>
        {
            var tool = parse.GetValue(from) switch { "mpop" => ImportTool.Mpop, "getmail" => ImportTool.Getmail, _ => ImportTool.Fetchmail };
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            var named = parse.GetValue(files) is { Length: > 0 } f ? f : AccountImport.DefaultFiles(tool, home);
            var dry = parse.GetValue(dryRun);
            IReadOnlyList<ImportedAccount> accounts;
            try
            {
                accounts = AccountImport.Parse(tool, named, home, parse.GetValue(state));
            }
            catch (ImportException ex)
            {
                context.Error.WriteLine(Core.Security.SafeText.Escape(ex.Message));
                context.Error.WriteLine("nothing was imported.");
                return Task.FromResult(ExitCodes.Usage);
            }
            if (context.LoadOptions(parse) is not { } options)
                return Task.FromResult(ExitCodes.Usage);
            // A dry run writes nothing: it creates no table or container, and starts no embedded store that has never
            // been started (nothing can exist there yet).
            if (dry && !Runtime.StorageMayHoldData(options))
                return RunAsync(context, Target.Empty(options), accounts, parse.GetValue(mailbox), dry, ct);
            return context.WithRuntimeAsync(options, ct, runtime => RunAsync(context, Target.Of(runtime), accounts, parse.GetValue(mailbox), dry, ct), createStorage: !dry);
        });
        return command;
    }

    /// <summary>
    /// What the import reads and writes: a started runtime's store, or none (a dry run before the embedded store was ever
    /// started). A dry run's store may lack tables: missing ones read as empty.
    /// </summary>
    private sealed record Target(CloudSpoolOptions Options, SecretPolicy Secrets, AccountValidator Validator, IUpstreamConnector Connector, Runtime? Store)
    {
        public static Target Of(Runtime runtime) => new(runtime.Options, runtime.Secrets, runtime.AccountValidator, runtime.Connector, runtime);

        public static Target Empty(CloudSpoolOptions options)
        {
            var secrets = options.Secrets.Policy();
            return new(options, secrets, Runtime.CreateAccountValidator(secrets), Runtime.CreateConnector(options), null);
        }

        public async Task<bool> ExistsAsync(string name, CancellationToken ct) =>
            Store is not null && await OrEmptyAsync(() => Store.Accounts.GetAsync(name, ct), null).ConfigureAwait(false) is not null;

        public async Task<IReadOnlyDictionary<string, ScheduleOverride>> EditsAsync(CancellationToken ct) =>
            Store is null ? new Dictionary<string, ScheduleOverride>() : await OrEmptyAsync(() => Store.Schedules.ListAsync(ct), new Dictionary<string, ScheduleOverride>()).ConfigureAwait(false);

        private static async Task<T> OrEmptyAsync<T>(Func<Task<T>> read, T empty)
        {
            try
            {
                return await read().ConfigureAwait(false);
            }
            catch (Azure.RequestFailedException ex) when (ex.Status == 404)
            {
                return empty;
            }
        }
    }

    /// <summary>Why an account has no seen entries to import: no record, a record file that is missing, or a record on the server not read again.</summary>
    private static string NoSeen(PlannedImport plan)
    {
        var files = plan.Source.Seen.Where(s => s.Path.Length > 0).Select(s => s.Path).ToList();
        if (plan.Source.Seen.Count == 0)
            return "none (see below)";
        // The server's flags are read only for an account to be created: an existing one keeps what it has.
        return files.Count == 0
            ? "not read again (the account exists; its record is the server's IMAP \\Seen flags)"
            : $"none ({string.Join(", ", files)} does not exist; the old tool deleted what it fetched)";
    }

    private static async Task<int> RefuseAsync(CommandContext context, List<string> problems, int exitCode)
    {
        foreach (var p in problems)
            await context.PrintErrorAsync(p).ConfigureAwait(false);
        await context.PrintErrorAsync("nothing was imported.").ConfigureAwait(false);
        return exitCode;
    }

    private static async Task<int> RunAsync(CommandContext context, Target target, IReadOnlyList<ImportedAccount> accounts, string? mailbox, bool dry, CancellationToken ct)
    {
        var problems = new List<string>();
        IReadOnlyList<PlannedImport> plans;
        try
        {
            plans = AccountImport.Plan(accounts, target.Secrets, mailbox, problems);
        }
        catch (ImportException ex)
        {
            await context.PrintErrorAsync(ex.Message).ConfigureAwait(false);
            await context.PrintErrorAsync("nothing was imported.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var existing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var plan in plans)
        {
            var validation = await target.Validator.ValidateAsync(plan.Definition, ct).ConfigureAwait(false);
            problems.AddRange(validation.Errors.Select(e => $"{plan}: {e.PropertyName}: {e.ErrorMessage}"));
            if (await target.ExistsAsync(plan.Definition.Name, ct).ConfigureAwait(false))
                existing.Add(plan.Definition.Name);
            else if (AccountImport.SecretConflict(plan) is { } conflict)
                problems.Add($"{plan}: {conflict}");
        }
        if (problems.Count > 0)
            return await RefuseAsync(context, problems, ExitCodes.Usage).ConfigureAwait(false);

        // fetchmail's IMAP record is the server's \Seen flags: read now (read-only), before anything is written.
        var read = new List<PlannedImport>();
        foreach (var plan in plans)
        {
            if (existing.Contains(plan.Definition.Name) || !AccountImport.ReadsServer(plan))
            {
                read.Add(plan);
                continue;
            }
            try
            {
                var password = plan.SecretValue ?? target.Secrets.Resolve(plan.Definition.PasswordRef);
                read.Add(await AccountImport.ReadServerAsync(target.Connector, plan, password, ct).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is SecretUnavailableException or Core.Pull.UpstreamException)
            {
                problems.Add($"{plan}: its record of fetched mail is the server's (IMAP \\Seen flags), which the import reads: {ex.Message}");
            }
        }
        if (problems.Count > 0)
            return await RefuseAsync(context, problems, ExitCodes.Failed).ConfigureAwait(false);
        plans = read;

        var edits = await target.EditsAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        foreach (var plan in plans)
        {
            var d = plan.Definition;
            var exists = existing.Contains(d.Name);
            var what = exists ? "exists already: left as it is, nothing imported again" : dry ? "would be created" : "created";
            await context.PrintAsync($"{d.Name}: {what} (from {plan.Source.Tool.ToString().ToLowerInvariant()} {plan.Source.Label}, {plan.Source.File}:{plan.Source.Line})").ConfigureAwait(false);
            var schedule = JobSchedules.Pull(target.Options, d, edits);
            await context.PrintAsync($"  {d.Protocol} {d.Host}:{d.EffectivePort} ({d.Tls}) user {d.Username} → mailbox {d.Mailbox}, leave {d.Leave}, "
                + $"schedule \"{schedule.Cron}\" {schedule.TimeZone}{(d.Schedule is null ? " (default)" : "")}, first run import{(d.Enabled ? "" : ", disabled")}"
                + (d.Protocol == UpstreamProtocol.Imap ? ", folders " + string.Join(", ", d.Folders) : "")).ConfigureAwait(false);
            await context.PrintAsync($"  password: {d.PasswordRef}: {plan.Password}").ConfigureAwait(false);
            if (plan.Seen.Count == 0)
                await context.PrintAsync("  seen: " + NoSeen(plan)).ConfigureAwait(false);
            foreach (var s in plan.Seen)
                await context.PrintAsync($"  seen: {s.Keys.Count} messages{(s.Scope.Length > 0 ? $" of folder {s.Scope} (UIDVALIDITY {s.Validity})" : "")} from {s.Source}").ConfigureAwait(false);
            foreach (var note in plan.Source.Notes)
                await context.PrintAsync($"  not mapped: {note.Setting}{(note.Line > 0 ? $" ({plan.Source.File}:{note.Line})" : "")}: {note.Reason}").ConfigureAwait(false);
            if (dry || exists || target.Store is not { } runtime)
                continue;
            // The secret and the seen entries first, the account last: a run cut short leaves no account that would
            // pull without its record, and running the import again completes it.
            AccountImport.WriteSecret(plan);
            foreach (var (scope, entries) in AccountImport.SeenEntries(plan, now))
                await runtime.Ledger.MarkSeenAsync(d.Name, scope.Scope, scope.Validity, entries, ct).ConfigureAwait(false);
            if (!await runtime.Accounts.AddAsync(d, ct).ConfigureAwait(false))
                await context.PrintErrorAsync($"{d.Name}: was added by someone else meanwhile: left as it is").ConfigureAwait(false);
        }
        var created = plans.Count - existing.Count;
        await context.PrintAsync(dry
            ? $"dry run: {created} accounts would be created, {existing.Count} exist already; nothing was written"
            : $"imported {created} accounts; {existing.Count} existed already").ConfigureAwait(false);
        return ExitCodes.Ok;
    }
}
