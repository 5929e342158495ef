using System.Reflection;
using System.Text.RegularExpressions;
using CloudSpool.Host.Cli;
using CloudSpool.Host.Configuration;
using CloudSpool.TestSupport;

namespace CloudSpool.Host.Tests;

/// <summary>
/// The reference in docs/ and the code agree: every command and option of docs/commands.md exists in the command line
/// and every one of the command line is documented there; every key of docs/configuration.md is a configuration key of
/// the options classes and every key of those classes is documented. The command line is read from its own --help
/// output, so what users see is what is compared.
/// </summary>
public sealed partial class DocumentationTests
{
    /// <summary>Options every command has (documented once, under "## cloudspool").</summary>
    private static readonly string[] GlobalOptions = ["--config", "--help"];

    [Fact]
    public async Task Commands_md_documents_every_command_and_option_of_the_command_line_and_nothing_else()
    {
        var documented = DocumentedCommands(File.ReadAllLines(Repository.PathOf("docs", "commands.md")));
        var actual = new SortedDictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        await CollectCommandsAsync([], actual);

        var problems = new List<string>();
        foreach (var (command, options) in actual)
        {
            if (!documented.TryGetValue(command, out var docOptions))
            {
                problems.Add($"command not documented in docs/commands.md: '{Title(command)}' (options: {string.Join(" ", options)})");
                continue;
            }
            foreach (var option in options.Where(o => !docOptions.Contains(o)))
                problems.Add($"option not documented in docs/commands.md: '{Title(command)} {option}'");
            foreach (var option in docOptions.Where(o => !options.Contains(o)))
                problems.Add($"option documented in docs/commands.md but not in the command line: '{Title(command)} {option}'");
        }
        foreach (var command in documented.Keys.Where(c => !actual.ContainsKey(c)))
            problems.Add($"command documented in docs/commands.md but not in the command line: '{Title(command)}'");

        Assert.True(actual.Count > 20, $"the command line's help gave only {actual.Count} commands: the help format changed?");
        Assert.True(problems.Count == 0, "docs/commands.md and the command line differ:\n  " + string.Join("\n  ", problems));
    }

    /// <summary>The section of docs/configuration.md whose table maps each older duration key to the key it sets.</summary>
    private const string OlderKeysHeading = "## Older keys still read";

    [Fact]
    public void Configuration_md_documents_every_configuration_key_and_nothing_else()
    {
        var documented = new SortedSet<string>(StringComparer.Ordinal);
        var documentedOlder = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var inOlder = false;
        foreach (var line in File.ReadAllLines(Repository.PathOf("docs", "configuration.md")))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
                inOlder = line == OlderKeysHeading;
            if (inOlder && OlderKeyRow().Match(line) is { Success: true } older)
                documentedOlder[older.Groups["old"].Value] = older.Groups["new"].Value;
            else if (!inOlder && KeyRow().Match(line) is { Success: true } match)
                documented.Add(match.Groups["key"].Value);
        }
        var actual = new SortedSet<string>(StringComparer.Ordinal);
        CollectKeys(typeof(CloudSpoolOptions), "", actual);
        var read = LegacyDurationKeys.All.ToDictionary(k => k.Old, k => k.New, StringComparer.Ordinal);

        var problems = actual.Where(k => !documented.Contains(k)).Select(k => $"key not documented in docs/configuration.md: {k}")
            .Concat(documented.Where(k => !actual.Contains(k)).Select(k => $"key documented in docs/configuration.md but not in the options classes: {k}"))
            .Concat(read.Where(k => !documentedOlder.TryGetValue(k.Key, out var to) || to != k.Value)
                .Select(k => $"older key not listed under '{OlderKeysHeading}' as read as {k.Value}: {k.Key}"))
            .Concat(documentedOlder.Where(k => !read.ContainsKey(k.Key))
                .Select(k => $"older key listed under '{OlderKeysHeading}' but not read by the configuration loader: {k.Key}"))
            .Concat(read.Values.Where(k => !actual.Contains(k)).Select(k => $"an older key is read as {k}, which is no key of the options classes"))
            .Concat(read.Keys.Where(actual.Contains).Select(k => $"{k} is both an older key and a key of the options classes"))
            .ToList();

        Assert.True(actual.Count > 50, $"only {actual.Count} keys found in the options classes");
        Assert.True(read.Count > 10, $"only {read.Count} older keys found");
        Assert.True(problems.Count == 0, "docs/configuration.md and the options classes differ:\n  " + string.Join("\n  ", problems));
    }

    [Fact]
    public async Task Readme_quick_start_shows_moving_in_from_each_tool_and_from_gmail_s_fetcher_with_options_that_exist()
    {
        var lines = File.ReadAllLines(Repository.PathOf("README.md"));
        var quickStart = Array.FindIndex(lines, l => l.StartsWith("## Five minutes", StringComparison.Ordinal));
        var start = Array.IndexOf(lines, "### Moving from fetchmail / mpop / getmail / Gmail's fetcher");
        Assert.True(quickStart >= 0 && start > quickStart, "README.md: no section \"### Moving from fetchmail / mpop / getmail / Gmail's fetcher\" in the quick start");
        Assert.DoesNotContain(lines[quickStart..start], l => l.StartsWith("## ", StringComparison.Ordinal) && l != lines[quickStart]);
        var end = Array.FindIndex(lines, start + 1, l => l.StartsWith("## ", StringComparison.Ordinal) || l.StartsWith("### ", StringComparison.Ordinal));
        var commands = ShellCommands(lines[start..end]);

        foreach (var tool in new[] { "fetchmail", "mpop", "getmail" })
            Assert.Contains(commands, c => c.StartsWith($"cloudspool account import --from {tool} ", StringComparison.Ordinal));
        // Gmail's fetcher leaves no file: a typical ISP POP3 account, added to pull what is still on the server.
        Assert.Contains(commands, c => c.StartsWith("cloudspool account add ", StringComparison.Ordinal)
            && c.Contains("--protocol pop3", StringComparison.Ordinal) && c.Contains("--first-run import", StringComparison.Ordinal));

        foreach (var command in commands)
        {
            var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
            var path = new List<string>();
            var (options, subcommands) = await HelpAsync(path);
            while (path.Count < words.Length && subcommands.Contains(words[path.Count]))
            {
                path.Add(words[path.Count]);
                (options, subcommands) = await HelpAsync(path);
            }
            Assert.True(subcommands.Count == 0, $"README.md: '{command}' names no command");
            foreach (var option in words.Where(w => w.StartsWith("--", StringComparison.Ordinal)))
                Assert.True(options.Contains(option), $"README.md: '{command}': {Title(string.Join(' ', path))} has no option {option}");
        }
    }

    /// <summary>The cloudspool commands of the ```sh blocks in <paramref name="lines"/>: continuations joined, comments cut.</summary>
    private static List<string> ShellCommands(string[] lines)
    {
        var commands = new List<string>();
        var inBlock = false;
        var current = "";
        foreach (var line in lines)
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                inBlock = !inBlock;
                continue;
            }
            if (!inBlock)
                continue;
            var text = line.Split(" #", 2)[0].Trim();
            current += text.TrimEnd('\\').Trim() + " ";
            if (text.EndsWith('\\'))
                continue;
            if (current.StartsWith("cloudspool ", StringComparison.Ordinal))
                commands.Add(current.Trim());
            current = "";
        }
        return commands;
    }

    /// <summary>A command section: "## cloudspool account add"; its options: "- `--host HOST`: ..." under "### OPTIONS".</summary>
    private static Dictionary<string, SortedSet<string>> DocumentedCommands(string[] lines)
    {
        var commands = new Dictionary<string, SortedSet<string>>(StringComparer.Ordinal);
        SortedSet<string>? current = null;
        var inOptions = false;
        foreach (var line in lines)
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                var heading = line[3..].Trim();
                current = null;
                inOptions = false;
                if (heading == "cloudspool" || heading.StartsWith("cloudspool ", StringComparison.Ordinal))
                {
                    current = new SortedSet<string>(StringComparer.Ordinal);
                    commands[string.Join(' ', heading.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1))] = current;
                }
            }
            else if (line.StartsWith("### ", StringComparison.Ordinal))
            {
                inOptions = line[4..].Trim() == "OPTIONS";
            }
            else if (current is not null && inOptions && OptionItem().Match(line) is { Success: true } item)
            {
                current.Add(item.Groups["option"].Value);
            }
        }
        return commands;
    }

    /// <summary>Walks the command tree through --help: a command with subcommands is a group; its leaves are compared.</summary>
    private static async Task CollectCommandsAsync(List<string> path, SortedDictionary<string, SortedSet<string>> commands)
    {
        var (options, subcommands) = await HelpAsync(path);
        if (path.Count == 0)
        {
            // The root's options are the global ones.
            commands[""] = new SortedSet<string>(options, StringComparer.Ordinal);
        }
        else if (subcommands.Count == 0)
        {
            commands[string.Join(' ', path)] = new SortedSet<string>(options.Where(o => !GlobalOptions.Contains(o)), StringComparer.Ordinal);
        }
        foreach (var sub in subcommands)
            await CollectCommandsAsync([.. path, sub], commands);
    }

    /// <summary>The options and subcommands of a command, as its --help shows them.</summary>
    private static async Task<(List<string> Options, List<string> Subcommands)> HelpAsync(List<string> path)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.InvokeAsync([.. path, "--help"], TextReader.Null, output, error);
        Assert.True(code == ExitCodes.Ok, $"'{Title(string.Join(' ', path))} --help' exited {code}: {error}");
        return ParseHelp(output.ToString());
    }

    /// <summary>The options (long names) and subcommands of one help text (System.CommandLine's layout).</summary>
    private static (List<string> Options, List<string> Subcommands) ParseHelp(string help)
    {
        var options = new List<string>();
        var subcommands = new List<string>();
        string? section = null;
        foreach (var line in help.Split('\n').Select(l => l.TrimEnd('\r')))
        {
            if (line.Length > 0 && !char.IsWhiteSpace(line[0]))
            {
                section = line.TrimEnd(':');
                continue;
            }
            // Entries are indented by two spaces; wrapped descriptions by more.
            if (line.Length < 3 || line[0] != ' ' || line[1] != ' ' || line[2] == ' ')
                continue;
            var entry = line[2..].Split("  ", 2)[0];
            if (section == "Options")
                options.AddRange(LongOption().Matches(entry).Select(m => m.Value));
            else if (section == "Commands")
                subcommands.Add(entry.Split(' ')[0]);
        }
        return (options, subcommands);
    }

    /// <summary>Configuration keys as the binder sees them: nested sections, "[]" for the elements of a list of objects.</summary>
    private static void CollectKeys(Type type, string prefix, SortedSet<string> keys)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod?.IsPublic == true))
        {
            var key = prefix + property.Name;
            var t = property.PropertyType;
            keys.Add(key);
            if (t.IsClass && t != typeof(string) && !t.IsGenericType)
            {
                keys.Remove(key);
                CollectKeys(t, key + ":", keys);
            }
            else if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>)
                && t.GetGenericArguments()[0] is { IsClass: true } element && element != typeof(string))
            {
                CollectKeys(element, key + "[]:", keys);
            }
        }
    }

    private static string Title(string command) => command.Length == 0 ? "cloudspool" : "cloudspool " + command;

    [GeneratedRegex(@"^\|\s*`(?<key>[A-Z][A-Za-z]*(?::[A-Z][A-Za-z]*(?:\[\])?)+)`\s*\|")]
    private static partial Regex KeyRow();

    [GeneratedRegex(@"^\|\s*`(?<old>[A-Z][A-Za-z]*(?::[A-Z][A-Za-z]*)+)`\s*\|\s*`(?<new>[A-Z][A-Za-z]*(?::[A-Z][A-Za-z]*)+)`\s*\|")]
    private static partial Regex OlderKeyRow();

    [GeneratedRegex(@"^- `(?<option>--[a-z0-9-]+)")]
    private static partial Regex OptionItem();

    [GeneratedRegex(@"--[a-z0-9][a-z0-9-]*")]
    private static partial Regex LongOption();
}
