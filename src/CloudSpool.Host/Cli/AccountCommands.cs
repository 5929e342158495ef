using System.CommandLine;
using System.Text.Json;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool account add|list|remove|test|import`.</summary>
public static class AccountCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create(CommandContext context)
    {
        var account = new Command("account", "Manage upstream accounts (stored in the spool's control table; every worker sees them).");
        account.Subcommands.Add(Add(context));
        account.Subcommands.Add(List(context));
        account.Subcommands.Add(Remove(context));
        account.Subcommands.Add(Test(context));
        account.Subcommands.Add(AccountImportCommand.Create(context));
        return account;
    }

    private static Command Add(CommandContext context)
    {
        var name = new Argument<string>("name") { Description = "Account name (lower-case letters, digits, '.', '_', '-')" };
        var protocol = new Option<string>("--protocol") { Description = "pop3 or imap", DefaultValueFactory = _ => "pop3" };
        protocol.AcceptOnlyFromAmong("pop3", "imap");
        var host = new Option<string>("--host") { Description = "Upstream server", Required = true };
        var port = new Option<int>("--port") { Description = "Port (default: 995/110 for POP3, 993/143 for IMAP by TLS mode)" };
        var tls = new Option<string>("--tls") { Description = "implicit (default), starttls, or none (plain text: only when you mean it)", DefaultValueFactory = _ => "implicit" };
        tls.AcceptOnlyFromAmong("implicit", "starttls", "none");
        var trust = new Option<string?>("--trust-cert") { Description = "PEM file of a private certificate/CA to trust for this server (validation stays on)" };
        var user = new Option<string>("--user") { Description = "Upstream user name", Required = true };
        var password = new Option<string>("--password-ref") { Description = "Where the password is: env:CLOUDSPOOL_SECRET_NAME (Secrets:EnvironmentPrefix) or file:/path inside ~/.config/cloudspool/secrets (Secrets:Directory; mode 600)", Required = true };
        var auth = new Option<string?>("--auth") { Description = "Force a mechanism: USER, APOP, or a SASL name such as PLAIN (default: strongest offered)" };
        var folders = new Option<string[]>("--folder") { Description = "IMAP folder to pull (repeatable; default INBOX)", AllowMultipleArgumentsPerToken = true };
        var mailbox = new Option<string>("--mailbox") { Description = "Local mailbox it feeds (several accounts may feed one)", Required = true };
        var leave = new Option<string>("--leave") { Description = "keep | delete | delete-after=DAYS | delete-larger=SIZE, comma-combined", DefaultValueFactory = _ => "keep" };
        var firstRun = new Option<string>("--first-run") { Description = "import (default): pull what is there; skip: take it as seen, pull only new mail", DefaultValueFactory = _ => "import" };
        firstRun.AcceptOnlyFromAmong("import", "skip");
        var schedule = new Option<string?>("--schedule") { Description = "Quartz cron, e.g. \"0 */2 * * * ?\" (default: Pull:DefaultSchedule)" };
        var zone = new Option<string?>("--tz") { Description = "Time zone of the schedule, e.g. Asia/Tokyo (default: Pull:TimeZone)" };
        var disabled = new Option<bool>("--disabled") { Description = "Add it without scheduling it" };
        var quota = new Option<string?>("--quota") { Description = "The upstream mailbox's size limit (e.g. 50M), when the server does not tell it: the health job warns before it fills up" };

        var command = new Command("add", "Add an upstream account.") { name, protocol, host, port, tls, trust, user, password, auth, folders, mailbox, leave, firstRun, schedule, zone, disabled, quota };
        command.SetAction((parse, ct) =>
        {
            if (!LeavePolicy.TryParse(parse.GetValue(leave)!, out var policy, out var policyError))
            {
                context.Error.WriteLine($"--leave: {policyError}");
                return Task.FromResult(ExitCodes.Usage);
            }
            long? quotaBytes = null;
            if (parse.GetValue(quota) is { } q)
            {
                if (!ByteSize.TryParse(q, out var parsed) || parsed <= 0)
                {
                    context.Error.WriteLine($"--quota: '{q}' is not a size: expected bytes with an optional K, M or G suffix, e.g. 50M");
                    return Task.FromResult(ExitCodes.Usage);
                }
                quotaBytes = parsed;
            }
            var chosenFolders = parse.GetValue(folders);
            var definition = new AccountDefinition
            {
                Name = parse.GetValue(name)!,
                Protocol = parse.GetValue(protocol) == "imap" ? UpstreamProtocol.Imap : UpstreamProtocol.Pop3,
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                Tls = parse.GetValue(tls) switch { "starttls" => TlsMode.StartTls, "none" => TlsMode.None, _ => TlsMode.Implicit },
                TrustedCertificateFile = parse.GetValue(trust) is { } t ? Path.GetFullPath(t) : null,
                Username = parse.GetValue(user)!,
                PasswordRef = parse.GetValue(password)!,
                AuthMechanism = parse.GetValue(auth),
                Folders = chosenFolders is { Length: > 0 } ? chosenFolders : ["INBOX"],
                Mailbox = parse.GetValue(mailbox)!,
                Leave = policy,
                FirstRun = parse.GetValue(firstRun) == "skip" ? FirstRunMode.SkipExisting : FirstRunMode.Import,
                Schedule = parse.GetValue(schedule),
                TimeZone = parse.GetValue(zone),
                Enabled = !parse.GetValue(disabled),
                QuotaBytes = quotaBytes,
            };
            return context.WithRuntimeAsync(parse, ct, async runtime =>
            {
                var validation = await runtime.AccountValidator.ValidateAsync(definition, ct).ConfigureAwait(false);
                if (!validation.IsValid)
                {
                    foreach (var e in validation.Errors)
                        await context.PrintErrorAsync($"{e.PropertyName}: {e.ErrorMessage}").ConfigureAwait(false);
                    await context.PrintErrorAsync("the account was not added.").ConfigureAwait(false);
                    return ExitCodes.Usage;
                }
                if (!await runtime.Accounts.AddAsync(definition, ct).ConfigureAwait(false))
                {
                    await context.PrintErrorAsync($"an account named '{definition.Name}' exists already (remove it first)").ConfigureAwait(false);
                    return ExitCodes.Failed;
                }
                var schedule = JobSchedules.Pull(runtime.Options, definition, await runtime.Schedules.ListAsync(ct).ConfigureAwait(false));
                await context.PrintAsync($"added {definition.Name}: {definition.Protocol} {definition.Host}:{definition.EffectivePort} ({definition.Tls}) → mailbox {definition.Mailbox}, leave {definition.Leave}, schedule \"{schedule.Cron}\" {schedule.TimeZone}").ConfigureAwait(false);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    private static Command List(CommandContext context)
    {
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var command = new Command("list", "List accounts with their last pull.") { json };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var accounts = await runtime.Accounts.ListAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(accounts, Json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            if (accounts.Count == 0)
            {
                await context.PrintAsync("no accounts (add one with: cloudspool account add NAME --host ... )").ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            var edits = await runtime.Schedules.ListAsync(ct).ConfigureAwait(false);
            await context.PrintAsync($"{"NAME",-16} {"PROTOCOL",-8} {"SERVER",-28} {"TLS",-9} {"MAILBOX",-12} {"LEAVE",-20} SCHEDULE").ConfigureAwait(false);
            foreach (var a in accounts)
            {
                var schedule = JobSchedules.Pull(runtime.Options, a, edits);
                await context.PrintAsync($"{a.Name,-16} {a.Protocol,-8} {a.Host + ":" + a.EffectivePort,-28} {a.Tls,-9} {a.Mailbox,-12} {a.Leave,-20} \"{schedule.Cron}\" {schedule.TimeZone}{(a.Enabled ? "" : " (disabled)")}").ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Remove(CommandContext context)
    {
        var name = new Argument<string>("name");
        var command = new Command("remove", "Remove an account definition (its mail stays in the spool).") { name };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var accountName = parse.GetValue(name)!;
            if (!await runtime.Accounts.RemoveAsync(accountName, ct).ConfigureAwait(false))
            {
                await context.PrintErrorAsync($"no account named '{accountName}'").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            await context.PrintAsync($"removed {accountName}; its mail stays in the spool").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Test(CommandContext context)
    {
        var name = new Argument<string>("name");
        var command = new Command("test", "Connect, log in and report the upstream mailbox size, changing nothing.") { name };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var accountName = parse.GetValue(name)!;
            var account = await runtime.Accounts.GetAsync(accountName, ct).ConfigureAwait(false);
            if (account is null)
            {
                await context.PrintErrorAsync($"no account named '{accountName}'").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            try
            {
                var password = runtime.Secrets.Resolve(account.PasswordRef);
                var session = await runtime.Connector.ConnectAsync(account, password, ct).ConfigureAwait(false);
                await using (session.ConfigureAwait(false))
                {
                    foreach (var scope in session.Scopes)
                    {
                        var listing = await session.OpenScopeAsync(scope, ct).ConfigureAwait(false);
                        var label = scope.Length == 0 ? "mailbox" : $"folder {scope}";
                        await context.PrintAsync($"{account.Name}: {label}: {listing.Messages.Count} messages, {listing.Messages.Sum(m => m.Size)} bytes").ConfigureAwait(false);
                        await session.CloseScopeAsync(ct).ConfigureAwait(false);
                    }
                    // Nothing was marked for deletion, so ending the session changes nothing upstream.
                    await session.CommitAsync(ct).ConfigureAwait(false);
                }
                await context.PrintAsync($"{account.Name}: ok: connected to {account.Host}:{account.EffectivePort} ({account.Tls}) and logged in as {account.Username}").ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (SecretUnavailableException ex)
            {
                await context.PrintErrorAsync($"{account.Name}: FAILED (Configuration): password unavailable: {ex.Message}").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            catch (UpstreamException ex)
            {
                await context.PrintErrorAsync($"{account.Name}: FAILED ({ex.Kind}): {ex.Message}").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
        }));
        return command;
    }
}
