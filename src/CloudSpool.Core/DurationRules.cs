using System.Globalization;
using FluentValidation;

namespace CloudSpool.Core;

/// <summary>Rules of TimeSpan settings, their limits written the way they are configured (hh:mm:ss).</summary>
public static class DurationRules
{
    /// <summary>From <paramref name="min"/> to <paramref name="max"/> inclusive; <paramref name="why"/> is added to the message.</summary>
    public static IRuleBuilderOptions<T, TimeSpan> Between<T>(this IRuleBuilder<T, TimeSpan> rule, TimeSpan min, TimeSpan max, string? why = null) =>
        rule.InclusiveBetween(min, max)
            .WithMessage($"{{PropertyValue}} is out of range: expected between {Text(min)} and {Text(max)}{(why is null ? "" : " (" + why + ")")}");

    /// <summary>A whole number of seconds: what Azure grants a lease for and what a page's refresh header counts.</summary>
    public static IRuleBuilderOptions<T, TimeSpan> WholeSeconds<T>(this IRuleBuilder<T, TimeSpan> rule) =>
        rule.Must(d => d.Ticks % TimeSpan.TicksPerSecond == 0)
            .WithMessage("{PropertyValue} is not a whole number of seconds");

    /// <summary>A duration as configuration takes it (the constant format: [d.]hh:mm:ss[.fffffff]).</summary>
    public static string Text(TimeSpan duration) => duration.ToString("c", CultureInfo.InvariantCulture);
}
