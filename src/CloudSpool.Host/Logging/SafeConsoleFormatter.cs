using System.Globalization;
using System.Text;
using CloudSpool.Core.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace CloudSpool.Host.Logging;

/// <summary>
/// The one log line format of every command: <c>2026-12-01 18:00:00 info: Category[EventId] message exception</c> (UTC, one
/// line per entry, as the simple console formatter's single-line mode), with every control character of the message and
/// the exception escaped (<see cref="SafeText"/>). Subjects, senders, login names and upstream servers' error texts
/// reach log lines; an ESC, CR or BEL in them must not act on the terminal that shows the log, nor forge a line.
/// </summary>
public sealed class SafeConsoleFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "cloudspool";

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        ArgumentNullException.ThrowIfNull(textWriter);
        var message = logEntry.Formatter?.Invoke(logEntry.State, logEntry.Exception);
        if (message is null && logEntry.Exception is null)
            return;
        textWriter.Write(Format(DateTimeOffset.UtcNow, logEntry.LogLevel, logEntry.Category, logEntry.EventId.Id, message, logEntry.Exception));
    }

    /// <summary>One entry as its line (with the line end).</summary>
    public static string Format(DateTimeOffset time, LogLevel level, string category, int eventId, string? message, Exception? exception)
    {
        var b = new StringBuilder(128);
        b.Append(time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss ", CultureInfo.InvariantCulture))
            .Append(Level(level)).Append(": ")
            .Append(SafeText.Escape(category)).Append('[').Append(eventId.ToString(CultureInfo.InvariantCulture)).Append("] ")
            .Append(SafeText.Escape(message));
        if (exception is not null)
            b.Append(' ').Append(SafeText.Escape(exception.ToString()));
        return b.Append(Environment.NewLine).ToString();
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => "none",
    };
}
