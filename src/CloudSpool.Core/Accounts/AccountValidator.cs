using System.Text.RegularExpressions;
using FluentValidation;

namespace CloudSpool.Core.Accounts;

/// <summary>Validates an account definition; every failure names the property and what was expected.</summary>
public sealed partial class AccountValidator : AbstractValidator<AccountDefinition>
{
    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,62}$")]
    private static partial Regex NamePattern();

    /// <param name="isValidCron">The scheduler's cron check (Core does not depend on Quartz).</param>
    /// <param name="secrets">
    /// The rule for what the password reference may name, checked when an account is stored; null checks only its shape
    /// (a stored account whose reference breaks the rule is still scheduled: its runs fail, saying why, in `status` and an
    /// alert, rather than the account silently not running).
    /// </param>
    public AccountValidator(Func<string, bool> isValidCron, SecretPolicy? secrets = null)
    {
        RuleFor(a => a.Name).NotEmpty().Matches(NamePattern())
            .WithMessage("'{PropertyValue}' is not an account name: use 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit");
        RuleFor(a => a.Mailbox).NotEmpty().Matches(NamePattern())
            .WithMessage("'{PropertyValue}' is not a mailbox name: use 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit");
        RuleFor(a => a.Host).NotEmpty().WithMessage("the upstream server's host name is required")
            .Must(h => Uri.CheckHostName(h) != UriHostNameType.Unknown)
            .WithMessage("'{PropertyValue}' is not a host name or IP address");
        RuleFor(a => a.Port).InclusiveBetween(0, 65535)
            .WithMessage("{PropertyValue} is not a TCP port: expected 1-65535, or 0 for the protocol's default");
        RuleFor(a => a.Protocol).IsInEnum();
        RuleFor(a => a.Tls).IsInEnum();
        RuleFor(a => a.FirstRun).IsInEnum();
        RuleFor(a => a.Username).NotEmpty().WithMessage("the upstream user name is required");
        RuleFor(a => a.PasswordRef).NotEmpty()
            .Must(SecretReference.IsReference)
            .WithMessage("the password must be a reference, 'env:VARIABLE' or 'file:/absolute/path', never the password itself");
        if (secrets is not null)
            RuleFor(a => a.PasswordRef).AllowedBy(secrets);
        RuleFor(a => a.TrustedCertificateFile)
            .Must(File.Exists!).When(a => a.TrustedCertificateFile is not null)
            .WithMessage("the trusted certificate file '{PropertyValue}' does not exist");
        RuleFor(a => a.AuthMechanism)
            .Matches("^[A-Za-z0-9_-]{1,40}$").When(a => a.AuthMechanism is not null)
            .WithMessage("'{PropertyValue}' is not an authentication mechanism: expected USER, APOP or a SASL name such as PLAIN");
        RuleFor(a => a.Folders).NotEmpty().When(a => a.Protocol == UpstreamProtocol.Imap)
            .WithMessage("an IMAP account needs at least one folder (e.g. INBOX)");
        RuleForEach(a => a.Folders).NotEmpty().WithMessage("a folder name cannot be empty");
        RuleFor(a => a.Leave).NotNull();
        RuleFor(a => a.Leave.DeleteAfterDays).GreaterThan(0).When(a => a.Leave?.DeleteAfterDays is not null)
            .OverridePropertyName("Leave.DeleteAfterDays");
        RuleFor(a => a.Leave.DeleteLargerThan).GreaterThan(0).When(a => a.Leave?.DeleteLargerThan is not null)
            .OverridePropertyName("Leave.DeleteLargerThan");
        RuleFor(a => a.QuotaBytes).GreaterThan(0).When(a => a.QuotaBytes is not null)
            .WithMessage("the quota must be a positive size, e.g. 50M");
        RuleFor(a => a.Schedule)
            .Must(s => isValidCron(s!)).When(a => a.Schedule is not null)
            .WithMessage("'{PropertyValue}' is not a Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year]), e.g. \"0 */5 * * * ?\"");
        RuleFor(a => a.TimeZone)
            .Must(tz => TimeZoneInfo.TryFindSystemTimeZoneById(tz!, out _)).When(a => a.TimeZone is not null)
            .WithMessage("'{PropertyValue}' is not a known time zone (e.g. UTC, Europe/Berlin, Asia/Tokyo)");
    }
}

/// <summary>The secret-reference rule as a validation rule (accounts and the relay password share it).</summary>
internal static class SecretRules
{
    /// <summary>A reference of the right shape must also be allowed by <paramref name="policy"/>; the failure explains the rule.</summary>
    public static IRuleBuilderOptionsConditions<T, TReference> AllowedBy<T, TReference>(this IRuleBuilder<T, TReference> rule, SecretPolicy policy)
        where TReference : class? =>
        rule.Custom((reference, context) =>
        {
            if (reference is string text && SecretReference.IsReference(text) && policy.Check(text) is { } problem)
                context.AddFailure(problem);
        });
}
