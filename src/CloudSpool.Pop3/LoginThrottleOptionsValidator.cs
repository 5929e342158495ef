using FluentValidation;

namespace CloudSpool.Pop3;

/// <summary>The rules of <see cref="LoginThrottleOptions"/>: each failure names the setting and what it was.</summary>
public sealed class LoginThrottleOptionsValidator : AbstractValidator<LoginThrottleOptions>
{
    public LoginThrottleOptionsValidator()
    {
        RuleFor(o => o.MaxFailures).AtLeastOne();
        RuleFor(o => o.MaxConcurrentPerAddress).Must(n => n is not < 1)
            .WithMessage("{PropertyPath} must be at least 1 or null (was {PropertyValue})");
    }
}
