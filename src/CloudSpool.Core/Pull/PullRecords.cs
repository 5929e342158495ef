using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Pull;

/// <summary>Health of one account's pulling, kept across runs.</summary>
public sealed record AccountPullState
{
    public required string Account { get; init; }
    public DateTimeOffset? LastAttempt { get; init; }
    public DateTimeOffset? LastSuccess { get; init; }
    public DateTimeOffset? LastNewMail { get; init; }
    public int FailureStreak { get; init; }
    public string? LastError { get; init; }
    public UpstreamErrorKind? LastErrorKind { get; init; }

    /// <summary>Scheduled runs before this time are skipped (capped exponential backoff after failures).</summary>
    public DateTimeOffset? NextAttemptAfter { get; init; }

    public int LastRunMessages { get; init; }
    public long LastRunBytes { get; init; }
    public int? UpstreamMessages { get; init; }
    public long? UpstreamBytes { get; init; }

    /// <summary>The storage limit the upstream server reported at the last successful run (IMAP QUOTA); null: none.</summary>
    public long? UpstreamQuotaBytes { get; init; }

    /// <summary>The storage in use the upstream server reported against its limit.</summary>
    public long? UpstreamQuotaUsedBytes { get; init; }

    /// <summary>
    /// Messages the leave policy wants gone that were left upstream flagged \Deleted at the last successful run: the
    /// IMAP server has no UIDPLUS, and a plain EXPUNGE would also remove what other clients flagged.
    /// </summary>
    public int UpstreamLeftFlaggedDeleted { get; init; }

    /// <summary>The day (in Pull:TimeZone) that <see cref="TodayMessages"/> and <see cref="TodayBytes"/> count.</summary>
    public DateOnly? Today { get; init; }

    /// <summary>New messages stored on <see cref="Today"/>.</summary>
    public int TodayMessages { get; init; }

    /// <summary>Bytes of new messages stored on <see cref="Today"/>.</summary>
    public long TodayBytes { get; init; }
}

/// <summary>The outcome of one pull run of one account.</summary>
public sealed record PullRunRecord
{
    public required string Account { get; init; }
    public required DateTimeOffset Started { get; init; }
    public DateTimeOffset Finished { get; init; }
    public RunOutcome Outcome { get; init; }

    /// <summary>New messages stored in the spool.</summary>
    public int Stored { get; init; }

    /// <summary>Messages fetched that the mailbox already held (through another account or an earlier crash).</summary>
    public int Duplicates { get; init; }

    /// <summary>Messages taken as already seen at the first run.</summary>
    public int TakenAsSeen { get; init; }

    public long Bytes { get; init; }
    public int DeletedUpstream { get; init; }
    public int FailedMessages { get; init; }
    public string? Error { get; init; }
    public UpstreamErrorKind? ErrorKind { get; init; }

    /// <summary>Why a run was skipped (backoff, another worker holds the lease, account disabled).</summary>
    public string? SkipReason { get; init; }
}
