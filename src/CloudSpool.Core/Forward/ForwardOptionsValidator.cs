using System.Text.RegularExpressions;
using CloudSpool.Core.Accounts;
using FluentValidation;
using FluentValidation.Results;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>
/// Validates the <c>Forward</c> section; every failure names its path, and a bad rule is named by its index and name
/// (<c>Forward:Rules[2]:Subject: rule [2] 'boss': ...</c>).
/// </summary>
public sealed partial class ForwardOptionsValidator : AbstractValidator<ForwardOptions>
{
    /// <summary>Smallest size limit a destination may have: the headers and notes of a copy need room.</summary>
    public const long MinDestinationBytes = 4096;

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex MailboxName();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$", RegexOptions.IgnoreCase)]
    private static partial Regex MimeType();

    /// <param name="isValidCron">The scheduler's cron check (Core does not depend on Quartz).</param>
    /// <param name="secrets">What the relay password reference may name (the same rule as accounts' references); null: the defaults.</param>
    public ForwardOptionsValidator(Func<string, bool> isValidCron, SecretPolicy? secrets = null)
    {
        secrets ??= SecretPolicy.Default;
        RuleFor(f => f.Mailbox).NotEmpty().When(f => f.Configured)
            .WithMessage("forwarding needs the spool mailbox whose mail it forwards (e.g. \"alice\")");
        RuleFor(f => f.Mailbox).Matches(MailboxName()).When(f => !string.IsNullOrEmpty(f.Mailbox))
            .WithMessage("'{PropertyValue}' is not a mailbox name: use lower-case letters, digits, '.', '_' or '-'");
        RuleFor(f => f.Sender).NotEmpty().When(f => f.Configured)
            .WithMessage("forwarding needs CloudSpool's own sending address (accepted by the relay), e.g. \"cloudspool@example.net\"");
        RuleFor(f => f.Sender).Must(IsAddress).When(f => !string.IsNullOrEmpty(f.Sender))
            .WithMessage("'{PropertyValue}' is not a mail address");
        RuleForEach(f => f.Destinations).ChildRules(d =>
        {
            d.RuleFor(x => x.Address).Must(IsAddress).WithMessage("'{PropertyValue}' is not a mail address");
            d.RuleFor(x => x.MaxBytes).InclusiveBetween(MinDestinationBytes, 64L << 20)
                .WithMessage($"{{PropertyValue}} is out of range: expected {MinDestinationBytes} bytes to 64 MiB");
            d.RuleForEach(x => x.KeepAttachmentTypes).Must(t => t is not null && MimeType().IsMatch(t))
                .WithMessage("'{PropertyValue}' is not a MIME type: expected type/subtype or type/* (e.g. text/calendar, image/*)");
        });
        RuleFor(f => f.DefaultAction).Must(a => ForwardActions.TryParse(a, out _))
            .WithMessage("'{PropertyValue}' is not an action: expected forward-trimmed, forward-as-is or skip");
        RuleFor(f => f.Rules).Custom((rules, context) =>
        {
            for (var i = 0; i < rules.Count; i++)
            {
                foreach (var (property, problem) in RuleProblems(rules[i]))
                {
                    var label = string.IsNullOrWhiteSpace(rules[i]?.Name) ? $"rule [{i}]" : $"rule [{i}] '{rules[i].Name}'";
                    context.AddFailure(new ValidationFailure($"{context.PropertyPath}[{i}]{(property is null ? "" : "." + property)}", $"{label}: {problem}"));
                }
            }
        });
        RuleFor(f => f.Smtp.Host).NotEmpty().When(f => f.Configured)
            .WithMessage("forwarding needs the SMTP relay's host name");
        RuleFor(f => f.Smtp.Host).Must(h => Uri.CheckHostName(h) != UriHostNameType.Unknown).When(f => !string.IsNullOrEmpty(f.Smtp.Host))
            .WithMessage("'{PropertyValue}' is not a host name or IP address");
        RuleFor(f => f.Smtp.Port).InclusiveBetween(0, 65535)
            .WithMessage("{PropertyValue} is not a TCP port: expected 1-65535, or 0 for the default of Security (587, 465 or 25)");
        RuleFor(f => f.Smtp.Security).IsInEnum();
        RuleFor(f => f.Smtp.Password).Must(SecretReference.IsReference).When(f => f.Smtp.Password is not null)
            .WithMessage("the password must be a reference, 'env:VARIABLE' or 'file:/absolute/path', never the password itself");
        RuleFor(f => f.Smtp.Password).AllowedBy(secrets);
        RuleFor(f => f.Smtp.Password).NotEmpty().When(f => !string.IsNullOrEmpty(f.Smtp.User))
            .WithMessage("a user without a password reference: set Smtp:Password to env:VARIABLE or file:/path");
        RuleFor(f => f.Smtp.User).NotEmpty().When(f => f.Smtp.Password is not null)
            .WithMessage("a password reference without a user: set Smtp:User");
        RuleFor(f => f.Smtp.TrustedCertificateFile).Must(File.Exists!).When(f => f.Smtp.TrustedCertificateFile is not null)
            .WithMessage("the trusted certificate file '{PropertyValue}' does not exist");
        RuleFor(f => f.Smtp.Timeout).Between(TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(10));
        RuleFor(f => f.Schedule).Must(s => isValidCron(s))
            .WithMessage("'{PropertyValue}' is not a Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year]), e.g. \"0 * * * * ?\"");
        RuleFor(f => f.TimeZone).Must(tz => TimeZoneInfo.TryFindSystemTimeZoneById(tz!, out _)).When(f => f.TimeZone is not null)
            .WithMessage("'{PropertyValue}' is not a known time zone (e.g. UTC, Europe/Berlin, Asia/Tokyo)");
        RuleForEach(f => f.Windows).Custom((window, context) =>
        {
            if (!ForwardWindow.TryParse(window, out _, out var error))
                context.AddFailure(error!);
        });
        RuleFor(f => f.BaseBackoff).InclusiveBetween(TimeSpan.FromSeconds(1), TimeSpan.FromDays(1))
            .WithMessage("{PropertyValue} is out of range: expected between 00:00:01 and 1.00:00:00");
        RuleFor(f => f.MaxBackoff).GreaterThanOrEqualTo(f => f.BaseBackoff).LessThanOrEqualTo(TimeSpan.FromDays(1))
            .WithMessage("{PropertyValue} is out of range: at least BaseBackoff and at most 1.00:00:00");
        RuleFor(f => f.MaxAttempts).InclusiveBetween(1, 1000)
            .WithMessage("{PropertyValue} is out of range: expected 1-1000 attempts");
        RuleFor(f => f.LeaseDuration).Between(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(60), "Azure blob leases last 15-60 seconds").WholeSeconds();
    }

    private static bool IsAddress(string? text) =>
        text is not null && MailboxAddress.TryParse(text, out var address) && address.Address.Contains('@', StringComparison.Ordinal)
        && !address.Address.StartsWith('@') && !address.Address.EndsWith('@');

    /// <summary>Every problem of one rule, with the property it concerns (null: the rule as a whole).</summary>
    public static IEnumerable<(string? Property, string Problem)> RuleProblems(ForwardRuleDefinition? rule)
    {
        if (rule is null)
        {
            yield return (null, "the rule is empty");
            yield break;
        }
        if (rule.Action is null)
            yield return (nameof(rule.Action), "no action: expected forward-trimmed, forward-as-is or skip");
        else if (!ForwardActions.TryParse(rule.Action, out _))
            yield return (nameof(rule.Action), $"'{rule.Action}' is not an action: expected forward-trimmed, forward-as-is or skip");

        var texts = new (string Name, string? Value)[]
        {
            (nameof(rule.From), rule.From), (nameof(rule.To), rule.To), (nameof(rule.Subject), rule.Subject),
            (nameof(rule.Account), rule.Account), (nameof(rule.AttachmentType), rule.AttachmentType),
        };
        foreach (var (name, value) in texts.Where(t => t.Value is not null))
        {
            if (TextPattern.Problem(value) is { } problem)
                yield return (name, $"{name} '{value}': {problem}");
        }
        foreach (var (header, value) in rule.Headers)
        {
            if (string.IsNullOrWhiteSpace(header) || header.Any(c => c <= ' ' || c == ':' || c > '~'))
                yield return ($"Headers.{header}", $"'{header}' is not a header field name");
            else if (TextPattern.Problem(value) is { } problem)
                yield return ($"Headers.{header}", $"header {header} '{value}': {problem}");
        }
        if (rule.MinBytes is < 0)
            yield return (nameof(rule.MinBytes), $"{rule.MinBytes} is not a size: expected 0 or more bytes");
        if (rule.MaxBytes is < 0)
            yield return (nameof(rule.MaxBytes), $"{rule.MaxBytes} is not a size: expected 0 or more bytes");
        if (rule.MinBytes is { } min && rule.MaxBytes is { } max && min > max)
            yield return (nameof(rule.MinBytes), $"MinBytes {min} is larger than MaxBytes {max}: the rule can never match");

        var hasCondition = texts.Any(t => t.Value is not null) || rule.Headers.Count > 0 || rule.MinBytes is not null
            || rule.MaxBytes is not null || rule.HasAttachments is not null || rule.Automatic is not null;
        if (!hasCondition)
            yield return (null, "no condition: a rule needs at least one (use \"From\": \"*\" to match every message)");
    }
}
