using FluentValidation;

namespace CloudSpool.Pop3;

/// <summary>
/// Rules shared by the options of the POP3 server and of what is built on it (the edge): each message names the
/// property as it is written in code, and the value it had.
/// </summary>
public static class OptionRules
{
    public static IRuleBuilderOptions<T, TimeSpan> Positive<T>(this IRuleBuilder<T, TimeSpan> rule) =>
        rule.GreaterThan(TimeSpan.Zero).WithMessage("{PropertyPath} must be positive (was {PropertyValue})");

    public static IRuleBuilderOptions<T, TimeSpan> NotNegative<T>(this IRuleBuilder<T, TimeSpan> rule) =>
        rule.GreaterThanOrEqualTo(TimeSpan.Zero).WithMessage("{PropertyPath} must not be negative (was {PropertyValue})");

    public static IRuleBuilderOptions<T, long> NotNegative<T>(this IRuleBuilder<T, long> rule) =>
        rule.GreaterThanOrEqualTo(0).WithMessage("{PropertyPath} must not be negative (was {PropertyValue})");

    public static IRuleBuilderOptions<T, int> NotNegative<T>(this IRuleBuilder<T, int> rule) =>
        rule.GreaterThanOrEqualTo(0).WithMessage("{PropertyPath} must not be negative (was {PropertyValue})");

    public static IRuleBuilderOptions<T, int> AtLeastOne<T>(this IRuleBuilder<T, int> rule) =>
        rule.GreaterThanOrEqualTo(1).WithMessage("{PropertyPath} must be at least 1 (was {PropertyValue})");
}
