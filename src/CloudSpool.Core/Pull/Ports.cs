namespace CloudSpool.Core.Pull;

/// <summary>A message the seen ledger knows, with what was done with it.</summary>
/// <param name="Key">The upstream key (see <see cref="UpstreamMessage.Key"/>).</param>
/// <param name="FirstSeen">When it was first stored (or taken as seen).</param>
/// <param name="Stored">True when it is in the spool; false when it was taken as already seen at first run.</param>
/// <param name="MessageKey">Its key in the spool when stored.</param>
/// <param name="Size">Upstream size, or <see cref="UnknownSize"/>.</param>
public sealed record SeenEntry(string Key, DateTimeOffset FirstSeen, bool Stored, string? MessageKey, long Size)
{
    /// <summary>
    /// The size of an entry imported from another tool's record (fetchmail's .fetchids, mpop's UIDLs file, getmail's
    /// oldmail files hold only the UIDL or UID): it matches a message of any size listed under that key. The first pull
    /// that lists the message records its real size.
    /// </summary>
    public const long UnknownSize = -1;

    /// <summary>Whether a message listed under this entry's key with <paramref name="size"/> bytes is the message this entry records.</summary>
    public bool MatchesSize(long size) => Size == UnknownSize || Size == size;
}

/// <summary>Per-account record of what has been pulled, so no message is pulled twice.</summary>
public interface IPullLedger
{
    /// <summary>The scope's last known validity, or null before its first run.</summary>
    Task<string?> GetScopeValidityAsync(string account, string scope, CancellationToken cancellationToken);

    Task SetScopeValidityAsync(string account, string scope, string validity, CancellationToken cancellationToken);

    /// <summary>Everything seen in the scope under one validity, by key.</summary>
    Task<IReadOnlyDictionary<string, SeenEntry>> LoadSeenAsync(string account, string scope, string validity, CancellationToken cancellationToken);

    /// <summary>Records entries as seen (idempotent upsert).</summary>
    Task MarkSeenAsync(string account, string scope, string validity, IReadOnlyCollection<SeenEntry> entries, CancellationToken cancellationToken);

    /// <summary>
    /// Forgets seen entries of messages that are gone upstream (deleted, or listed under an old validity),
    /// so the ledger stays as large as the mailbox, not as large as its history.
    /// </summary>
    Task ForgetSeenAsync(string account, string scope, string validity, IReadOnlyCollection<string> keys, CancellationToken cancellationToken);

    /// <summary>Records that one message could not be fetched, with the reason; it is retried on later runs.</summary>
    Task RecordMessageFailureAsync(string account, string scope, string key, string error, CancellationToken cancellationToken);

    /// <summary>Forgets an earlier failure of a message that has now been stored.</summary>
    Task ClearMessageFailureAsync(string account, string scope, string key, CancellationToken cancellationToken);

    /// <summary>Messages whose fetch keeps failing.</summary>
    Task<IReadOnlyList<MessageFailure>> ListMessageFailuresAsync(string account, CancellationToken cancellationToken);
}

/// <summary>A message that could not be fetched.</summary>
public sealed record MessageFailure(string Scope, string Key, int Attempts, DateTimeOffset LastAttempt, string Error);

/// <summary>Control-state: per-account health and the history of runs.</summary>
public interface IPullStateStore
{
    Task<AccountPullState?> GetStateAsync(string account, CancellationToken cancellationToken);
    Task SaveStateAsync(AccountPullState state, CancellationToken cancellationToken);
    Task AppendRunAsync(PullRunRecord run, CancellationToken cancellationToken);
    Task<IReadOnlyList<PullRunRecord>> RecentRunsAsync(string account, int count, CancellationToken cancellationToken);
}
