using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;

namespace CloudSpool.Core.Health;

/// <summary>Turns what the pull runs recorded into health: pure, so "no new mail" and "fetching is broken" are told apart the same way everywhere.</summary>
public static class HealthEvaluator
{
    public const string FailingCondition = "failing";
    public const string StaleCondition = "stale";
    public const string QuotaCondition = "quota";

    /// <summary>The embedded store is past its warning share (an alert of the store, not of an account).</summary>
    public const string StoreCondition = "store";

    /// <summary>The name the embedded store's alert goes under, in place of an account's.</summary>
    public const string StoreSubject = "storage";

    /// <summary>
    /// The embedded store as an alert subject: past its warning share it raises <see cref="StoreCondition"/> (once, until
    /// it is below again). Null when there is no gauge (a storage account) or no mailbox to tell.
    /// </summary>
    public static AccountHealth? EvaluateStore(Spool.StoreCapacity? capacity, string? mailbox)
    {
        if (capacity is null || mailbox is null)
            return null;
        var level = capacity.Level;
        var alerts = new HashSet<string>(StringComparer.Ordinal);
        if (level != Spool.StoreCapacityLevel.Ok)
            alerts.Add(StoreCondition);
        return new AccountHealth(StoreSubject, mailbox, level == Spool.StoreCapacityLevel.Refuse ? AccountHealthState.Failing : AccountHealthState.Ok, alerts,
            capacity.Problem ?? "embedded store: " + capacity.Describe());
    }

    /// <summary>
    /// How full the upstream mailbox is: (used, limit) from the account's configured quota and the size its server
    /// listed, else from the quota the server reported (and its usage, else the listed size); null when unknown.
    /// </summary>
    public static (long Used, long Limit)? QuotaUse(AccountDefinition account, AccountPullState? state)
    {
        ArgumentNullException.ThrowIfNull(account);
        var limit = account.QuotaBytes ?? state?.UpstreamQuotaBytes;
        var used = account.QuotaBytes is null ? state?.UpstreamQuotaUsedBytes ?? state?.UpstreamBytes : state?.UpstreamBytes;
        return limit is > 0 && used is { } u ? (u, limit.Value) : null;
    }

    /// <summary>
    /// Why messages the leave policy wants gone are still upstream (an IMAP server without UIDPLUS), in plain words; null
    /// when none are.
    /// </summary>
    public static string? LeftFlaggedNote(AccountPullState? state) => state?.UpstreamLeftFlaggedDeleted is > 0 and var n
        ? $"{n} stored messages are left upstream flagged \\Deleted, not expunged: the server lacks UIDPLUS (RFC 4315), and a plain EXPUNGE would also remove messages other clients flagged"
        : null;

    /// <summary>"42.0 of 50.0 MiB (84 %)".</summary>
    public static string DescribeQuota((long Used, long Limit) quota) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{quota.Used / 1048576.0:F1} of {quota.Limit / 1048576.0:F1} MiB ({100.0 * quota.Used / quota.Limit:F0} %)");

    /// <param name="account">The account as configured.</param>
    /// <param name="state">What its runs recorded; null when it never ran.</param>
    /// <param name="now">The time of the evaluation.</param>
    /// <param name="thresholds">When trouble becomes an alert.</param>
    public static AccountHealth Evaluate(AccountDefinition account, AccountPullState? state, DateTimeOffset now, HealthThresholds thresholds)
    {
        ArgumentNullException.ThrowIfNull(account);
        ArgumentNullException.ThrowIfNull(thresholds);
        var alerts = new HashSet<string>(StringComparer.Ordinal);
        if (!account.Enabled)
            return new AccountHealth(account.Name, account.Mailbox, AccountHealthState.Disabled, alerts, "disabled by its owner");

        var lastSuccess = state?.LastSuccess;
        var since = lastSuccess is { } s ? $"since {s:u}" : "ever";
        if (state?.FailureStreak > 0)
        {
            // Failing for as long as there has been no success (or, never successful, since the first attempts).
            var failingFor = now - (lastSuccess ?? state.LastAttempt ?? now);
            if (failingFor >= thresholds.FailingAfter || lastSuccess is null && state.FailureStreak >= 3)
                alerts.Add(FailingCondition);
        }
        var neverChecked = lastSuccess is null;
        if (!neverChecked && now - lastSuccess!.Value >= thresholds.StaleAfter)
            alerts.Add(StaleCondition);
        var quota = QuotaUse(account, state);
        var quotaNote = quota is { } q ? "; upstream mailbox " + DescribeQuota(q) + " full" : "";
        if (quota is { } full && full.Used >= full.Limit * thresholds.QuotaWarnAt)
        {
            alerts.Add(QuotaCondition);
            quotaNote += ": it will refuse new mail when full";
        }
        if (LeftFlaggedNote(state) is { } flagged)
            quotaNote += "; " + flagged;

        if (state?.FailureStreak > 0)
            return new AccountHealth(account.Name, account.Mailbox, AccountHealthState.Failing, alerts,
                $"{state.FailureStreak} failed runs in a row, no success {since}: {state.LastError}{quotaNote}")
            {
                UpstreamError = state.LastError,
                OwnReason = $"{state.FailureStreak} failed runs in a row, no success {since}{quotaNote}",
            };
        if (alerts.Contains(StaleCondition))
            return new AccountHealth(account.Name, account.Mailbox, AccountHealthState.Stale, alerts, $"no successful check {since}: is a worker running?{quotaNote}");
        if (state?.LastAttempt is null)
            return new AccountHealth(account.Name, account.Mailbox, AccountHealthState.NeverRun, alerts, "not run yet");
        var newMail = state.LastNewMail is { } m ? $"last new mail {m:u}" : "no new mail yet";
        return new AccountHealth(account.Name, account.Mailbox, AccountHealthState.Ok, alerts, $"checked {lastSuccess:u}, {newMail}{quotaNote}");
    }
}
