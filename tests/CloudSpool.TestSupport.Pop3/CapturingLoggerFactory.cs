using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace CloudSpool.TestSupport.Pop3;

/// <summary>Keeps every log entry (all levels), with its structured values, to check what the server logs.</summary>
public sealed class CapturingLoggerFactory : ILoggerFactory
{
    public ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception, string State)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void AddProvider(ILoggerProvider provider) { }

    public void Dispose() { }

    /// <summary>Everything logged, as one text: messages, structured values and exceptions.</summary>
    public string AllText() => string.Join("\n", Entries.Select(e => e.Level + " " + e.Message + " " + e.State + " " + e.Exception));

    private sealed class Logger(CapturingLoggerFactory owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs
                ? string.Join(", ", pairs.Select(p => p.Key + "=" + p.Value))
                : string.Empty;
            owner.Entries.Enqueue((logLevel, formatter(state, exception), exception, values));
        }
    }
}
