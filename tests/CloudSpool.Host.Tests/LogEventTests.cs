using System.Reflection;
using System.Text.RegularExpressions;
using CloudSpool.TestSupport;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.Tests;

/// <summary>
/// The logging convention: each shipped assembly logs through one class of its own (<c>CoreLog</c>, <c>HostLog</c>, ...)
/// whose events each have an explicit id, unique in the assembly. An event id names one message wherever the log
/// lines end up; two messages sharing one, or one without its own, make a filter on the id catch the wrong lines.
/// </summary>
public sealed partial class LogEventTests
{
    /// <summary>Every shipped project (the Host's assembly is the cloudspool executable), with the one class its log messages belong in.</summary>
    private static readonly (string Project, string LogClass)[] Shipped =
    [
        ("CloudSpool.Core", "CloudSpool.Core.CoreLog"),
        ("CloudSpool.Host", "CloudSpool.Host.HostLog"),
        ("CloudSpool.Storage.Azure", "CloudSpool.Storage.Azure.StorageLog"),
        ("CloudSpool.Edge", "CloudSpool.Edge.EdgeLog"),
        ("CloudSpool.Pop3", "CloudSpool.Pop3.Pop3Log"),
        ("CloudSpool.Upstream", "CloudSpool.Upstream.UpstreamLog"),
    ];

    /// <summary>The log classes themselves, the only source files that may call an ILogger directly.</summary>
    private static readonly string[] LogClassFiles =
    [
        "src/CloudSpool.Core/CoreLog.cs",
        "src/CloudSpool.Host/HostLog.cs",
        "src/CloudSpool.Storage.Azure/StorageLog.cs",
        "src/CloudSpool.Edge/EdgeLog.cs",
        "src/CloudSpool.Pop3/Pop3Log.cs",
    ];

    /// <summary>One log event as the assemblies define it.</summary>
    public sealed record LogEvent(string Project, string DeclaringType, string Name, int Id);

    [Fact]
    public void Every_log_event_is_in_its_assemblys_log_class_with_an_id_unique_in_the_assembly()
    {
        var events = Shipped.SelectMany(s => EventsOf(s.Project,
            s.Project == "CloudSpool.Host" ? typeof(Runtime).Assembly : Assembly.Load(s.Project))).ToList();

        var problems = Problems(events);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        // The scan sees what it checks: the log classes' events, generated and hand-written alike.
        Assert.Contains(events, e => e.DeclaringType == "CloudSpool.Core.CoreLog" && e.Name == "PullFailed");
        Assert.Contains(events, e => e.DeclaringType == "CloudSpool.Core.CoreLog" && e.Name == "Pulled");
        Assert.Contains(events, e => e.DeclaringType == "CloudSpool.Host.HostLog" && e.Name == "ScheduleChanged");
        Assert.Contains(events, e => e.DeclaringType == "CloudSpool.Pop3.Pop3Log" && e.Name == "LoggedIn");
    }

    [Fact]
    public void The_check_reports_a_shared_id_a_missing_id_and_an_event_outside_the_log_class()
    {
        LogEvent[] events =
        [
            new("CloudSpool.Core", "CloudSpool.Core.CoreLog", "First", 100),
            new("CloudSpool.Core", "CloudSpool.Core.CoreLog", "Second", 100),
            new("CloudSpool.Core", "CloudSpool.Core.CoreLog", "Unnumbered", -1),
            new("CloudSpool.Core", "CloudSpool.Core.Pull.PullEngine", "Local", 101),
            // The same id in another assembly is no clash.
            new("CloudSpool.Host", "CloudSpool.Host.HostLog", "Elsewhere", 100),
        ];

        var problems = Problems(events);

        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.Contains("event id 100", StringComparison.Ordinal) && p.Contains("First", StringComparison.Ordinal) && p.Contains("Second", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("Unnumbered", StringComparison.Ordinal) && p.Contains("no explicit event id", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("CloudSpool.Core.Pull.PullEngine.Local", StringComparison.Ordinal) && p.Contains("CoreLog", StringComparison.Ordinal));
    }

    [Fact]
    public void No_source_file_outside_the_log_classes_calls_a_logger_directly()
    {
        var src = Repository.PathOf("src");
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(Repository.Root, file).Replace(Path.DirectorySeparatorChar, '/');
            if (relative.Contains("/obj/", StringComparison.Ordinal) || relative.Contains("/bin/", StringComparison.Ordinal) || LogClassFiles.Contains(relative))
                continue;
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                if (DirectLogCall().IsMatch(lines[i]))
                    offenders.Add($"{relative}:{i + 1}: {lines[i].Trim()}");
            }
        }
        Assert.True(offenders.Count == 0, "log through the assembly's *Log class instead:\n" + string.Join("\n", offenders));
    }

    /// <summary>The [LoggerMessage] methods of a project's assembly, and the hand-written events of its log classes (an EventId field).</summary>
    private static IEnumerable<LogEvent> EventsOf(string name, Assembly assembly)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        var logClass = Shipped.Single(s => s.Project == name).LogClass;
        foreach (var type in assembly.GetTypes())
        {
            foreach (var method in type.GetMethods(all))
            {
                if (method.GetCustomAttribute<LoggerMessageAttribute>() is { } attribute)
                    yield return new LogEvent(name, type.FullName!, method.Name, attribute.EventId);
            }
            if (type.FullName == logClass)
            {
                foreach (var field in type.GetFields(all).Where(f => f.IsStatic && f.FieldType == typeof(EventId) && !f.Name.StartsWith('_')))
                {
                    var id = (EventId)field.GetValue(null)!;
                    yield return new LogEvent(name, type.FullName!, id.Name ?? field.Name, id.Id);
                }
            }
        }
    }

    /// <summary>What breaks the convention, one line each; empty when nothing does.</summary>
    private static List<string> Problems(IEnumerable<LogEvent> events)
    {
        var problems = new List<string>();
        foreach (var e in events)
        {
            var logClass = Shipped.Single(s => s.Project == e.Project).LogClass;
            if (e.DeclaringType != logClass)
                problems.Add($"{e.DeclaringType}.{e.Name} defines a log message outside {logClass}");
            if (e.Id <= 0)
                problems.Add($"{e.DeclaringType}.{e.Name} has no explicit event id");
        }
        foreach (var clash in events.Where(e => e.Id > 0).GroupBy(e => (e.Project, e.Id)).Where(g => g.Count() > 1))
            problems.Add($"{clash.Key.Project}: event id {clash.Key.Id} is used by {string.Join(", ", clash.Select(e => $"{e.DeclaringType}.{e.Name}"))}");
        return problems;
    }

    /// <summary>An ILogger extension call (LogInformation, Log(LogLevel...), ...) or a LoggerMessage.Define.</summary>
    [GeneratedRegex(@"\.Log(Trace|Debug|Information|Warning|Error|Critical)\s*\(|\.Log\s*\(\s*LogLevel\.|LoggerMessage\.Define")]
    private static partial Regex DirectLogCall();
}
