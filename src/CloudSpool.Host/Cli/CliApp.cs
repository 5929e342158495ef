using System.CommandLine;
using CloudSpool.Host.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.Cli;

/// <summary>Exit codes every command keeps (scripts and cloud cron hosts rely on them).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
}

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

/// <summary>What every command needs: the config option, output writers, and a way to start the runtime.</summary>
public sealed class CommandContext(Option<string?> configOption, TextReader input, TextWriter output, TextWriter error)
{
    /// <summary>Standard input: secrets are read from here, never from arguments.</summary>
    public TextReader In { get; } = input;
    public TextWriter Out { get; } = output;
    public TextWriter Error { get; } = error;

    /// <summary>
    /// Writes one line of human-readable output with every control character escaped: subjects, senders, login names
    /// and servers' error texts are others' words, and must not act on the terminal (--json output is escaped by its
    /// serializer, raw exports are bytes).
    /// </summary>
    public Task PrintAsync(string line) => Out.WriteLineAsync(Core.Security.SafeText.Escape(line));

    /// <summary>As <see cref="PrintAsync"/>, on standard error.</summary>
    public Task PrintErrorAsync(string line) => Error.WriteLineAsync(Core.Security.SafeText.Escape(line));

    public static ILoggerFactory CreateLoggers() => LoggerFactory.Create(b => b
        .SetMinimumLevel(LogLevel.Information)
        .AddFilter("Quartz", LogLevel.Warning)
        .AddFilter("Microsoft", LogLevel.Warning)
        // Logs go to standard error: standard output carries results (and --json). One line per entry, control
        // characters escaped (others' words reach log lines).
        .AddConsole(o =>
        {
            o.LogToStandardErrorThreshold = LogLevel.Trace;
            o.FormatterName = Logging.SafeConsoleFormatter.FormatterName;
        })
        .AddConsoleFormatter<Logging.SafeConsoleFormatter, Microsoft.Extensions.Logging.Console.ConsoleFormatterOptions>());

    /// <summary>Loads and validates the configuration; null (after printing every problem) when invalid.</summary>
    public CloudSpoolOptions? LoadOptions(ParseResult parse)
    {
        try
        {
            return ConfigLoader.Load(parse.GetValue(configOption) ?? ConfigLoader.DefaultPath());
        }
        catch (ConfigurationInvalidException ex)
        {
            Error.WriteLine(ex.Message);
            Error.WriteLine("nothing was started.");
            return null;
        }
    }

    /// <summary>Runs <paramref name="body"/> with a started runtime; handles config and storage start-up errors.</summary>
    public Task<int> WithRuntimeAsync(ParseResult parse, CancellationToken cancellationToken, Func<Runtime, Task<int>> body) =>
        LoadOptions(parse) is { } options ? WithRuntimeAsync(options, cancellationToken, body) : Task.FromResult(ExitCodes.Usage);

    /// <summary>
    /// As <see cref="WithRuntimeAsync(ParseResult, CancellationToken, Func{Runtime, Task{int}})"/> with loaded options;
    /// <paramref name="createStorage"/> false creates no table or container (see <see cref="Runtime.StartAsync"/>).
    /// </summary>
    public async Task<int> WithRuntimeAsync(CloudSpoolOptions options, CancellationToken cancellationToken, Func<Runtime, Task<int>> body, bool createStorage = true)
    {
        using var loggers = CreateLoggers();
        Runtime runtime;
        try
        {
            runtime = await Runtime.StartAsync(options, loggers, cancellationToken, createStorage).ConfigureAwait(false);
        }
        catch (Azurite.AzuriteRefusedException ex)
        {
            Error.WriteLine(ex.Message);
            return ExitCodes.Failed;
        }
        catch (Exception ex) when (ex is InvalidOperationException or Azure.RequestFailedException or System.Net.Http.HttpRequestException or FormatException or ArgumentException or AggregateException)
        {
            Error.WriteLine($"storage is not reachable: {ex.Message}");
            return ExitCodes.Failed;
        }
        await using (runtime.ConfigureAwait(false))
        {
            return await body(runtime).ConfigureAwait(false);
        }
    }
}
