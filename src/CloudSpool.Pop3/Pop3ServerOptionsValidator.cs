using FluentValidation;

namespace CloudSpool.Pop3;

/// <summary>The rules of <see cref="Pop3ServerOptions"/>: each failure names the setting, what it must be and what it was.</summary>
public sealed class Pop3ServerOptionsValidator : AbstractValidator<Pop3ServerOptions>
{
    public Pop3ServerOptionsValidator()
    {
        RuleFor(o => o.FailedLoginDelay).NotNegative();
        RuleFor(o => o.MaxFailedLoginDelay).GreaterThanOrEqualTo(o => o.FailedLoginDelay)
            .WithMessage(o => $"{nameof(o.MaxFailedLoginDelay)} must not be less than {nameof(o.FailedLoginDelay)} (was {o.MaxFailedLoginDelay}, {o.FailedLoginDelay})");
        RuleFor(o => o.FailedLoginWindow).Positive();
        RuleFor(o => o.MaxFailedLogins).AtLeastOne();
        RuleFor(o => o.FailedLoginLockout).Positive();
        RuleFor(o => o.TimeProvider).NotNull().WithMessage("{PropertyPath} must be set");
        RuleFor(o => o.MaxBadCommands).AtLeastOne();
        RuleFor(o => o.IdleTimeoutBeforeLogin).Positive();
        RuleFor(o => o.LoginTimeout).Positive();
        RuleFor(o => o.IdleTimeoutAfterLogin).Positive();
        RuleFor(o => o.MaxSessions).AtLeastOne();
        RuleFor(o => o.MaxSessionsPerAddress).AtLeastOne();
        // It goes into the greeting's APOP timestamp <...@HostName>.
        RuleFor(o => o.HostName).Must(h => !string.IsNullOrWhiteSpace(h) && !h.Any(c => c is <= ' ' or >= (char)0x7F or '<' or '>'))
            .WithMessage(o => $"{nameof(o.HostName)} must be printable ASCII without spaces or angle brackets (was '{o.HostName}')");
        RuleFor(o => o.ExpireDays).Must(d => d is not < 0).WithMessage("{PropertyPath} must not be negative (was {PropertyValue})");
        RuleFor(o => o.TransferChunkSize).InclusiveBetween(512, 16 * 1024 * 1024)
            .WithMessage("{PropertyPath} must be between 512 and 16777216 (was {PropertyValue})");
        RuleFor(o => o.TlsProtocols).Must(p => p != System.Security.Authentication.SslProtocols.None && (p & ~Pop3ServerOptions.PinnedTlsProtocols) == 0)
            .WithMessage("{PropertyPath} must be TLS 1.2, TLS 1.3 or both (was {PropertyValue})");
        RuleFor(o => o.Certificate).Must(c => c!.HasPrivateKey).When(o => o.Certificate is not null)
            .WithMessage(o => $"{nameof(o.Certificate)} must have a private key (subject {o.Certificate!.Subject})");
    }
}
