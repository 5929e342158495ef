using CloudSpool.Core.Scheduling;

namespace CloudSpool.Core.Pull;

/// <summary>One scope of an upstream account (a POP3 maildrop: "", or an IMAP folder) with the validity its keys belong to.</summary>
internal readonly record struct ScopeRef(string Name, string Validity)
{
    /// <summary>How log lines name the scope after the account ("" or "/Folder").</summary>
    public string Label => LabelOf(Name);

    public static string LabelOf(string scope) => scope.Length == 0 ? "" : "/" + scope;
}

/// <summary>What one run did so far, counted as it goes and turned into its record at the end.</summary>
internal sealed class RunCounters
{
    public int Stored;
    public int Duplicates;
    public int TakenAsSeen;
    public long Bytes;
    public int Deleted;
    public int FailedMessages;

    public PullRunRecord ToRecord(string account, DateTimeOffset started, DateTimeOffset finished, RunOutcome outcome) => new()
    {
        Account = account,
        Started = started,
        Finished = finished,
        Outcome = outcome,
        Stored = Stored,
        Duplicates = Duplicates,
        TakenAsSeen = TakenAsSeen,
        Bytes = Bytes,
        DeletedUpstream = Deleted,
        FailedMessages = FailedMessages,
    };
}
