using System.CommandLine;
using CloudSpool.Host.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.Cli;

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
