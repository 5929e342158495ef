using CloudSpool.Pop3;
using FluentValidation;

namespace CloudSpool.Edge;

/// <summary>The rules of <see cref="SpoolEdgeOptions"/>: each failure names the setting, what it must be and what it was.</summary>
public sealed class SpoolEdgeOptionsValidator : AbstractValidator<SpoolEdgeOptions>
{
    public SpoolEdgeOptionsValidator()
    {
        RuleFor(o => o.CacheBytes).Must(b => b is not < 0).WithMessage("{PropertyPath} must not be negative (was {PropertyValue})");
        RuleFor(o => o.CacheDiskShare).Must(s => s is > 0 and <= 1).WithMessage("{PropertyPath} must be in (0, 1] (was {PropertyValue})");
        RuleFor(o => o.CacheReserveBytes).NotNegative();
        RuleFor(o => o.SyncInterval).Positive();
        RuleFor(o => o.ReconcileInterval).Positive();
        RuleFor(o => o.StorageTimeout).Positive();
        RuleFor(o => o.ReadAheadMessages).NotNegative();
        RuleFor(o => o.ReadAheadFetches).AtLeastOne();
        RuleFor(o => o.Lookback).NotNegative();
    }
}
