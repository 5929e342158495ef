using System.CommandLine;

namespace CloudSpool.Host.Cli;

/// <summary>The `cloudspool` command line (see docs/commands.md).</summary>
public static class CliApp
{
    public static Task<int> InvokeAsync(string[] args, TextWriter output, TextWriter error, CancellationToken cancellationToken = default) =>
        InvokeAsync(args, Console.In, output, error, cancellationToken);

    /// <summary>Runs the command line; <paramref name="input"/> is where secrets such as POP3 passwords are read from.</summary>
    public static async Task<int> InvokeAsync(string[] args, TextReader input, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
    {
        var config = new Option<string?>("--config")
        {
            Description = "JSON configuration file (default: $CLOUDSPOOL_CONFIG, else ~/.config/cloudspool/cloudspool.json if present)",
            Recursive = true,
        };
        var root = new RootCommand("CloudSpool: pulls mail from upstream POP3/IMAP mailboxes into one durable spool in Azure Storage.");
        root.Options.Add(config);
        var context = new CommandContext(config, input, output, error);
        root.Subcommands.Add(RunCommands.Run(context));
        root.Subcommands.Add(RunCommands.Worker(context));
        root.Subcommands.Add(RunCommands.Edge(context));
        root.Subcommands.Add(EdgeCredentialsCommand.Create(context));
        root.Subcommands.Add(UserCommands.Create(context));
        root.Subcommands.Add(JobCommands.Create(context));
        root.Subcommands.Add(AccountCommands.Create(context));
        root.Subcommands.Add(StatusCommand.Create(context));
        root.Subcommands.Add(MessagesCommands.Create(context));
        root.Subcommands.Add(ScheduleCommands.Create(context));
        root.Subcommands.Add(ForwardCommands.Create(context));
        root.Subcommands.Add(StorageCommands.Create(context));
        root.Subcommands.Add(ForwardCommands.Rules(context));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // A wrong command line is a usage error (exit 2), told apart from a job that failed (exit 1).
            foreach (var problem in parse.Errors)
                await error.WriteLineAsync(problem.Message).ConfigureAwait(false);
            await error.WriteLineAsync("see: cloudspool --help").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        var invocation = new InvocationConfiguration
        {
            Output = output,
            Error = error,
            // SIGTERM/Ctrl+C cancel the command's token; System.CommandLine would end the process with 143 if the
            // command took longer than its 2-second default to finish, cutting a host's orderly stop short (jobs
            // finishing their batch, the edge closing sessions). The host's own shutdown timeout bounds it instead.
            ProcessTerminationTimeout = TimeSpan.FromSeconds(60),
        };
        return await parse.InvokeAsync(invocation, cancellationToken).ConfigureAwait(false);
    }
}
