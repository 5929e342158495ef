namespace CloudSpool.Core.Spool;

public enum StoreOutcome
{
    /// <summary>Newly stored.</summary>
    Stored,

    /// <summary>The mailbox already holds this message (same dedup key); nothing was written.</summary>
    Duplicate,
}

public sealed record StoreResult(StoreOutcome Outcome, string MessageKey);
