namespace CloudSpool.Core.Health;

/// <summary>
/// An alert raised for an account's condition, kept until the condition clears. The text is fixed when the alert is
/// raised, so a retried delivery renders the very same message (same Message-ID, same bytes), which the spool's dedup
/// stores once.
/// </summary>
public sealed record AlertRecord
{
    public required string Account { get; init; }
    public required string Condition { get; init; }
    public required string Mailbox { get; init; }
    public required DateTimeOffset RaisedAt { get; init; }
    public required string Text { get; init; }

    /// <summary>The alert message is in the mailbox.</summary>
    public bool Delivered { get; init; }

    /// <summary>When the condition cleared; the recovery message is being delivered.</summary>
    public DateTimeOffset? RecoveredAt { get; init; }
    public string? RecoveryText { get; init; }
}

/// <summary>Alerts raised and not yet cleared, shared by every worker.</summary>
public interface IAlertLedger
{
    Task<IReadOnlyList<AlertRecord>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Adds a new alert; false when one for the same account and condition exists.</summary>
    Task<bool> AddAsync(AlertRecord alert, CancellationToken cancellationToken);

    Task UpdateAsync(AlertRecord alert, CancellationToken cancellationToken);

    Task RemoveAsync(string account, string condition, CancellationToken cancellationToken);
}
