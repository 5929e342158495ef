namespace CloudSpool.Core.Health;

/// <summary>An account's health in one word (`cloudspool status`, alerts).</summary>
public enum AccountHealthState
{
    /// <summary>The last run succeeded and the account was checked recently.</summary>
    Ok,

    /// <summary>The last runs failed (the failure streak is not zero).</summary>
    Failing,

    /// <summary>No successful check for too long (no worker running, a scheduler stuck): broken even if no run said so.</summary>
    Stale,

    /// <summary>Switched off by its owner.</summary>
    Disabled,

    /// <summary>Added, not run yet.</summary>
    NeverRun,
}

/// <summary>When an account's trouble becomes an alert.</summary>
/// <param name="FailingAfter">A failure streak older than this (since the last success) alerts.</param>
/// <param name="StaleAfter">No successful check for this long alerts, whatever the runs say.</param>
/// <param name="QuotaWarnAt">The share of the upstream mailbox's quota in use from which it alerts (0.8: 80 %).</param>
public sealed record HealthThresholds(TimeSpan FailingAfter, TimeSpan StaleAfter, double QuotaWarnAt = 0.8);

/// <summary>The health of one account and the alert conditions it is in now.</summary>
/// <param name="Account">The account's name.</param>
/// <param name="Mailbox">The mailbox it feeds (where its alerts go).</param>
/// <param name="State">Its state in one word.</param>
/// <param name="Alerts">Conditions that call for an alert now (<see cref="HealthEvaluator.FailingCondition"/>, <see cref="HealthEvaluator.StaleCondition"/>).</param>
/// <param name="Reason">The state in plain words.</param>
public sealed record AccountHealth(string Account, string Mailbox, AccountHealthState State, IReadOnlySet<string> Alerts, string Reason)
{
    private readonly string? _ownReason;

    /// <summary>
    /// The last error as the failing runs recorded it, which quotes the upstream server's own words (its -ERR or NO
    /// text): someone else's text, to be quoted as such; null when not failing.
    /// </summary>
    public string? UpstreamError { get; init; }

    /// <summary>The state in CloudSpool's own words, without <see cref="UpstreamError"/>; <see cref="Reason"/> when there is none.</summary>
    public string OwnReason
    {
        get => _ownReason ?? Reason;
        init => _ownReason = value;
    }
}
