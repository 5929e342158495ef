using System.Text.RegularExpressions;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>What a rule can do with a message.</summary>
public enum ForwardAction
{
    /// <summary>Send the copy trimmed for the destination's limits.</summary>
    ForwardTrimmed,

    /// <summary>Send the original unchanged (no size limit).</summary>
    ForwardAsIs,

    /// <summary>Do not send.</summary>
    Skip,
}

/// <summary>The decision for one message, with a reason a person can read.</summary>
public sealed record ForwardDecision(ForwardAction Action, string Reason, int? RuleIndex = null, string? RuleName = null)
{
    public bool Forwards => Action != ForwardAction.Skip;
}

/// <summary>Names of actions in configuration and output.</summary>
public static class ForwardActions
{
    public const string ForwardTrimmed = "forward-trimmed";
    public const string ForwardAsIs = "forward-as-is";
    public const string Skip = "skip";

    public static bool TryParse(string? text, out ForwardAction action)
    {
        (var ok, action) = text?.Trim().ToLowerInvariant() switch
        {
            ForwardTrimmed => (true, ForwardAction.ForwardTrimmed),
            ForwardAsIs => (true, ForwardAction.ForwardAsIs),
            Skip => (true, ForwardAction.Skip),
            _ => (false, ForwardAction.Skip),
        };
        return ok;
    }

    public static string Name(ForwardAction action) => action switch
    {
        ForwardAction.ForwardTrimmed => ForwardTrimmed,
        ForwardAction.ForwardAsIs => ForwardAsIs,
        _ => Skip,
    };
}

/// <summary>
/// Ordered forwarding rules, first match wins. Before any rule: mail carrying the loop-guard header and mail from a
/// destination's own address (or CloudSpool's sending address) are never forwarded. Automatic or bulk mail is passed
/// over by forwarding rules that do not ask for it (<c>"Automatic": true</c> or a condition on Auto-Submitted,
/// Precedence or List-Id) and skipped when no rule forwards it. Mail no rule matched gets the default action.
/// </summary>
public sealed class ForwardRules
{
    private readonly IReadOnlyList<CompiledRule> _rules;
    private readonly ForwardAction _default;
    private readonly HashSet<string> _ownAddresses;

    private ForwardRules(IReadOnlyList<CompiledRule> rules, ForwardAction defaultAction, HashSet<string> ownAddresses)
    {
        _rules = rules;
        _default = defaultAction;
        _ownAddresses = ownAddresses;
    }

    /// <summary>Compiles validated options (see <see cref="ForwardOptionsValidator"/>); throws <see cref="ArgumentException"/> for invalid ones.</summary>
    public static ForwardRules Compile(ForwardOptions options)
    {
        if (!ForwardActions.TryParse(options.DefaultAction, out var defaultAction))
            throw new ArgumentException($"'{options.DefaultAction}' is not an action");
        var rules = options.Rules.Select((r, i) => CompiledRule.Compile(r, i)).ToList();
        var own = new HashSet<string>(options.Destinations.Select(d => d.Address!).Append(options.Sender).OfType<string>()
            .Select(a => MailboxAddress.TryParse(a, out var m) ? m.Address : a), StringComparer.OrdinalIgnoreCase);
        return new ForwardRules(rules, defaultAction, own);
    }

    /// <summary>Decides what happens to one message, and why. Never throws for message content.</summary>
    public ForwardDecision Decide(ForwardFacts facts)
    {
        if (facts.AlreadyForwarded)
            return new ForwardDecision(ForwardAction.Skip, $"already forwarded by CloudSpool (it carries {ForwardTrimmer.LoopHeader}): never forwarded again");
        if (facts.From.FirstOrDefault(f => _ownAddresses.Contains(f.Address)) is { } own)
            return new ForwardDecision(ForwardAction.Skip, $"from {own.Address}, a forwarding address itself: never forwarded (no loops)");

        if (facts.SourceAccount == Health.HealthRunner.AlertSource && facts.Header(Health.AlertMail.AlertHeader).Count > 0)
            return new ForwardDecision(ForwardAction.ForwardTrimmed, $"CloudSpool's own health alert ({Health.AlertMail.AlertHeader}): always sent while away, whatever the rules say about automatic mail");

        var automatic = facts.AutomaticBecause();
        var notes = new List<string>();
        foreach (var rule in _rules)
        {
            if (automatic is not null && rule.Action != ForwardAction.Skip && !rule.AsksForAutomatic)
                continue;
            bool matched;
            try
            {
                matched = rule.Matches(facts, automatic is not null);
            }
            catch (RegexMatchTimeoutException)
            {
                notes.Add($"rule {rule.Label} was passed over: its regular expression took longer than {TextPattern.MatchTimeout.TotalMilliseconds:0} ms");
                continue;
            }
            if (matched)
                return new ForwardDecision(rule.Action, $"rule {rule.Label} matched ({rule.Describe()}): {ForwardActions.Name(rule.Action)}" + Notes(notes), rule.Index, rule.Name);
        }
        if (automatic is not null)
            return new ForwardDecision(ForwardAction.Skip, $"automatic or bulk mail ({automatic}): not forwarded unless a rule asks for it (\"Automatic\": true)" + Notes(notes));
        return new ForwardDecision(_default, $"no rule matched: {ForwardActions.Name(_default)} (Forward:DefaultAction)" + Notes(notes));
    }

    private static string Notes(List<string> notes) => notes.Count == 0 ? "" : "; " + string.Join("; ", notes);

    private sealed class CompiledRule
    {
        private readonly List<(string What, Func<ForwardFacts, bool, bool> Test)> _conditions = [];

        public required int Index { get; init; }
        public required string? Name { get; init; }
        public required ForwardAction Action { get; init; }
        public required bool AsksForAutomatic { get; init; }

        public string Label => Name is null ? $"[{Index}]" : $"[{Index}] '{Name}'";

        public static CompiledRule Compile(ForwardRuleDefinition definition, int index)
        {
            if (!ForwardActions.TryParse(definition.Action, out var action))
                throw new ArgumentException($"rule [{index}]: '{definition.Action}' is not an action");
            var rule = new CompiledRule
            {
                Index = index,
                Name = string.IsNullOrWhiteSpace(definition.Name) ? null : definition.Name,
                Action = action,
                AsksForAutomatic = definition.Automatic == true || ForwardFacts.NamesAutomaticHeader(definition.Headers.Keys),
            };
            rule.Text("from", definition.From, f => Addresses(f.From));
            rule.Text("to", definition.To, f => Addresses(f.Recipients));
            rule.Text("subject", definition.Subject, f => [f.Subject]);
            foreach (var (header, pattern) in definition.Headers)
                rule.Text(header, pattern, f => f.Header(header));
            rule.Text("account", definition.Account, f => [f.SourceAccount]);
            rule.Text("attachment", definition.AttachmentType, f => f.Attachments.SelectMany(a => new[] { a.Type, a.Name }));
            if (definition.MinBytes is { } min)
                rule._conditions.Add(($"size >= {min}", (f, _) => f.Size >= min));
            if (definition.MaxBytes is { } max)
                rule._conditions.Add(($"size <= {max}", (f, _) => f.Size <= max));
            if (definition.HasAttachments is { } has)
                rule._conditions.Add((has ? "has attachments" : "no attachments", (f, _) => (f.Attachments.Count > 0) == has));
            if (definition.Automatic is { } automatic)
                rule._conditions.Add((automatic ? "automatic" : "not automatic", (_, isAutomatic) => isAutomatic == automatic));
            return rule;
        }

        private void Text(string what, string? pattern, Func<ForwardFacts, IEnumerable<string?>> values)
        {
            if (pattern is null)
                return;
            var compiled = TextPattern.Parse(pattern);
            _conditions.Add(($"{what} ~ {compiled}", (f, _) => compiled.Matches(values(f))));
        }

        private static IEnumerable<string?> Addresses(IEnumerable<MailboxAddress> list) =>
            list.SelectMany(m => new[] { m.Address, m.Name, string.IsNullOrEmpty(m.Name) ? null : $"{m.Name} <{m.Address}>" });

        public bool Matches(ForwardFacts facts, bool automatic) => _conditions.All(c => c.Test(facts, automatic));

        public string Describe() => string.Join(", ", _conditions.Select(c => c.What));
    }
}
