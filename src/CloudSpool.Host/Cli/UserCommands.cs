using System.CommandLine;
using System.Text;
using System.Text.Json;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool user add|passwd|remove|list`: POP3 users of the edge. Passwords come from standard input only.</summary>
public static class UserCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Longest password accepted (a line of standard input).</summary>
    private const int MaxPasswordLength = 1024;

    public static Command Create(CommandContext context)
    {
        var user = new Command("user", "Manage POP3 users of the edge (stored in the control table; every edge sees them). A user NAME logs in as NAME or NAME+CLIENT (one view per client, same password).");
        user.Subcommands.Add(Add(context));
        user.Subcommands.Add(Passwd(context));
        user.Subcommands.Add(Remove(context));
        user.Subcommands.Add(List(context));
        return user;
    }

    private static Command Add(CommandContext context)
    {
        var name = new Argument<string>("name") { Description = "User name (lower-case letters, digits, '.', '_', '-'; no '+')" };
        var mailbox = new Option<string?>("--mailbox") { Description = "Spool mailbox the user reads (default: the user name)" };
        var command = new Command("add", "Add a POP3 user; the password is read from standard input (one line).") { name, mailbox };
        command.SetAction(async (parse, ct) =>
        {
            var userName = parse.GetValue(name)!;
            var mailboxName = parse.GetValue(mailbox) ?? userName;
            if (!CheckName(context, "user name", userName) || !CheckName(context, "--mailbox", mailboxName))
                return ExitCodes.Usage;
            var password = await ReadPasswordAsync(context, ct).ConfigureAwait(false);
            if (password is null)
                return ExitCodes.Usage;
            return await context.WithRuntimeAsync(parse, ct, async runtime =>
            {
                if (!await runtime.Pop3Users.AddAsync(new Pop3User(userName, mailboxName, Pop3Passwords.Hash(password)), ct).ConfigureAwait(false))
                {
                    await context.Error.WriteLineAsync($"a user named '{userName}' exists already (change the password with: cloudspool user passwd {userName})").ConfigureAwait(false);
                    return ExitCodes.Failed;
                }
                await context.Out.WriteLineAsync($"added {userName}: reads mailbox {mailboxName}; logs in as {userName} or {userName}+CLIENT").ConfigureAwait(false);
                return ExitCodes.Ok;
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Passwd(CommandContext context)
    {
        var name = new Argument<string>("name");
        var command = new Command("passwd", "Set a POP3 user's password, read from standard input (one line).") { name };
        command.SetAction(async (parse, ct) =>
        {
            var userName = parse.GetValue(name)!;
            if (!CheckName(context, "user name", userName))
                return ExitCodes.Usage;
            var password = await ReadPasswordAsync(context, ct).ConfigureAwait(false);
            if (password is null)
                return ExitCodes.Usage;
            return await context.WithRuntimeAsync(parse, ct, async runtime =>
            {
                var existing = await runtime.Pop3Users.GetAsync(userName, ct).ConfigureAwait(false);
                if (existing is null || !await runtime.Pop3Users.UpdateAsync(existing with { PasswordHash = Pop3Passwords.Hash(password) }, ct).ConfigureAwait(false))
                {
                    await context.Error.WriteLineAsync($"no user named '{userName}'").ConfigureAwait(false);
                    return ExitCodes.Failed;
                }
                await context.Out.WriteLineAsync($"password of {userName} changed").ConfigureAwait(false);
                return ExitCodes.Ok;
            }).ConfigureAwait(false);
        });
        return command;
    }

    private static Command Remove(CommandContext context)
    {
        var name = new Argument<string>("name");
        var command = new Command("remove", "Remove a POP3 user (the mailbox's mail stays in the spool).") { name };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var userName = parse.GetValue(name)!;
            if (!await runtime.Pop3Users.RemoveAsync(userName, ct).ConfigureAwait(false))
            {
                await context.Error.WriteLineAsync($"no user named '{userName}'").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            await context.Out.WriteLineAsync($"removed {userName}; the mail stays in the spool").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command List(CommandContext context)
    {
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var command = new Command("list", "List POP3 users and the mailbox each reads (never a password or hash).") { json };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var users = (await runtime.Pop3Users.ListAsync(ct).ConfigureAwait(false)).Select(u => new { name = u.Name, mailbox = u.Mailbox }).ToList();
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(users, Json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            if (users.Count == 0)
            {
                await context.Out.WriteLineAsync("no users (add one with: cloudspool user add NAME < password-file)").ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            await context.Out.WriteLineAsync($"{"NAME",-24} MAILBOX").ConfigureAwait(false);
            foreach (var u in users)
                await context.Out.WriteLineAsync($"{u.name,-24} {u.mailbox}").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static bool CheckName(CommandContext context, string what, string name)
    {
        if (Pop3Names.IsValidName(name))
            return true;
        context.Error.WriteLine($"{what} '{name}' is not valid: expected 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit ('+' separates the client in a login, so it cannot be part of a name)");
        return false;
    }

    /// <summary>
    /// Reads the password: one line of standard input (a pipe or file), or typed at a terminal without echo.
    /// Null (after saying why) when there is none.
    /// </summary>
    private static async Task<string?> ReadPasswordAsync(CommandContext context, CancellationToken cancellationToken)
    {
        string? password;
        if (ReferenceEquals(context.In, Console.In) && !Console.IsInputRedirected)
        {
            await context.Error.WriteAsync("password: ").ConfigureAwait(false);
            password = ReadHidden();
            await context.Error.WriteLineAsync().ConfigureAwait(false);
        }
        else
        {
            password = await context.In.ReadLineAsync(cancellationToken).ConfigureAwait(false);
        }
        if (string.IsNullOrEmpty(password))
        {
            await context.Error.WriteLineAsync("no password: give it as one line on standard input, e.g. cloudspool user add NAME < password-file").ConfigureAwait(false);
            return null;
        }
        if (password.Length > MaxPasswordLength)
        {
            await context.Error.WriteLineAsync($"the password is longer than {MaxPasswordLength} characters").ConfigureAwait(false);
            return null;
        }
        return password;
    }

    private static string ReadHidden()
    {
        var sb = new StringBuilder();
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            if (key.Key == ConsoleKey.Enter)
                return sb.ToString();
            if (key.Key == ConsoleKey.Backspace)
            {
                if (sb.Length > 0)
                    sb.Length--;
            }
            else if (!char.IsControl(key.KeyChar))
            {
                sb.Append(key.KeyChar);
            }
        }
    }
}
