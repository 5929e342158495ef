using System.Text;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Every table, container, partition and key name is derived here and nowhere else.
/// <list type="bullet">
/// <item><c>{p}messages</c>: PK mailbox. RK <c>g:{last message key}</c>: a segment of up to 49 messages committed together, with
/// the key of its first (<c>First</c>), the binary index of its messages (<c>Index</c>, see SegmentIndex), the members removed
/// since (<c>Gone</c>) and the blob holding their whole metadata (<c>Blob</c>). Message keys are <c>m:{commit ticks:D19}-{8 hex}</c>
/// (they grow with commit time, see SpoolKeys). RK <c>b:{3 hex}:{n:D4}</c>: the dedup index in buckets (see DedupBuckets).
/// Segment row, bucket changes and the mailbox's change row <c>h:head</c> are written in one transaction (the change row's
/// ETag is the change token readers compare before querying; retention's removals replace it too). Rows of earlier versions,
/// still read: <c>m:{message key}</c> a message each, <c>d:{dedup key}</c> its dedup row.</item>
/// <item><c>{p}ledger</c>: PK account; RK <c>v:{scope}</c> scope validity, <c>s:{scope}:{validity}:{upstream key}</c>
/// seen entries, <c>f:{scope}:{upstream key}</c> messages whose fetch failed.</item>
/// <item><c>{p}control</c>: PK <c>account</c> (definitions) and <c>pull-state</c> (health), RK account name;
/// PK <c>schedule</c>, RK job name (schedule edits); PK <c>pop3-user</c>, RK user name (POP3 users of the edge:
/// mailbox and ASP.NET Core Identity password hash); PK <c>alert</c>, RK <c>{account}:{condition}</c> (open health alerts, with their
/// fixed text, until the condition clears).</item>
/// <item><c>{p}views</c>: per-client views of the POP3 edge. PK <c>view:{mailbox}:{client identity}</c> (both escaped),
/// RK message key (the <c>m:</c> key of <c>{p}messages</c>): a row means "hidden for this client" (DELE+QUIT); RK <c>h:head</c>
/// is the view's change row, replaced in every hiding transaction (its ETag is the view's change token).
/// One partition per mailbox and client, so a login reads one partition and a QUIT writes batches of at most 100.</item>
/// <item><c>{p}runs</c>: PK <c>pull:{account}</c> (or a job name: <c>retention</c>, <c>forward</c>); RK inverted ticks, so the latest run comes first.</item>
/// <item><c>{p}forwards</c>: the forward ledger. PK mailbox; RK <c>{message key}|{destination}</c> (destination lower-cased and
/// escaped): one row per message and destination (state, reason, attempts, Message-ID of the copy), written with ETags so a
/// forward is claimed once. Rows sort by message key, so a run reads the rows after its starting key with one range query.</item>
/// <item><c>{p}control</c>, forwarding: PK <c>forward</c>, RK <c>switch</c> (the away switch and its watermark); PK
/// <c>forward-cursor</c>, RK mailbox (every message up to this key is settled for every destination).</item>
/// <item>Container <c>{p}spool</c>: blob <c>{mailbox}/{sha256[0..2]}/{sha256}.eml</c> (a message of its own),
/// <c>{mailbox}/packs/{yyyyMMdd}/{guid}.pack</c> (small messages one after the other), <c>{mailbox}/segments/{last key}-{guid}.seg</c>
/// (a segment's metadata, a JSON line a message), each written once.</item>
/// <item>Container <c>{p}leases</c>: one empty blob per lease name.</item>
/// </list>
/// </summary>
public sealed class StorageNames
{
    public StorageNames(string prefix)
    {
        if (prefix.Length > 20 || !prefix.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9')))
            throw new ArgumentException("the storage name prefix must be at most 20 lower-case letters or digits", nameof(prefix));
        if (prefix.Length > 0 && !char.IsAsciiLetterLower(prefix[0]))
            throw new ArgumentException("the storage name prefix must start with a letter", nameof(prefix));
        MessagesTable = prefix + "messages";
        LedgerTable = prefix + "ledger";
        ControlTable = prefix + "control";
        RunsTable = prefix + "runs";
        ViewsTable = prefix + "views";
        ForwardsTable = prefix + "forwards";
        Tables = [MessagesTable, LedgerTable, ControlTable, RunsTable, ViewsTable, ForwardsTable];
        SpoolContainer = prefix + "spool";
        LeaseContainer = prefix + "leases";
    }

    public string MessagesTable { get; }
    public string LedgerTable { get; }
    public string ControlTable { get; }
    public string RunsTable { get; }
    public string ViewsTable { get; }
    public string ForwardsTable { get; }

    /// <summary>
    /// Every table of the spool, in the same order for every prefix: what is created, copied, and given a SAS of its
    /// own; a new table added here is all of those at once.
    /// </summary>
    public IReadOnlyList<string> Tables { get; }

    public string SpoolContainer { get; }
    public string LeaseContainer { get; }

    public const string AccountPartition = "account";
    public const string PullStatePartition = "pull-state";
    public const string SchedulePartition = "schedule";
    public const string Pop3UserPartition = "pop3-user";
    public const string AlertPartition = "alert";

    public static string AlertRowKey(string account, string condition) => $"{Escape(account)}:{Escape(condition)}";
    public const string ForwardPartition = "forward";
    public const string ForwardSwitchRow = "switch";
    public const string ForwardCursorPartition = "forward-cursor";

    /// <summary>The forward ledger row of one message and destination.</summary>
    public static string ForwardRowKey(string messageKey, string destination) => $"{messageKey}|{Escape(destination.ToLowerInvariant())}";

    /// <summary>The smallest forward row key after every row of <paramref name="messageKey"/> ('}' follows '|').</summary>
    public static string ForwardRowsEnd(string messageKey) => messageKey + "}";

    /// <summary>The message row key prefix of an ingest instant (keys at or after it sort at or after this).</summary>
    public static string MessageRowKeyAt(DateTimeOffset instant) => $"m:{instant.UtcTicks:D19}";

    /// <summary>The partition of one client identity's view of a mailbox (hidden message keys).</summary>
    public static string ViewPartition(string mailbox, string client) => $"view:{Escape(mailbox)}:{Escape(client)}";

    public static string MessageRowKey(long commitTicks, string sha256) => SpoolKeys.Message(commitTicks, sha256);
    public const string MessageRowPrefix = SpoolKeys.MessagePrefix;
    public static string DedupRowKey(string dedupKey) => "d:" + dedupKey;

    /// <summary>Segment rows: <c>g:{the key of its last message}</c>.</summary>
    public const string SegmentRowPrefix = "g:";
    public static string SegmentRowKey(string lastMessageKey) => SegmentRowPrefix + lastMessageKey;

    /// <summary>A new, unique name for the blob of a segment whose last message has this key.</summary>
    public static string SegmentBlobName(string mailbox, string lastMessageKey) =>
        $"{mailbox}/segments/{lastMessageKey[2..]}-{Guid.NewGuid():N}.seg";

    public static bool IsSegmentBlob(string mailbox, string blobName) => blobName.StartsWith(mailbox + "/segments/", StringComparison.Ordinal);
    public const string HeadRowKey = "h:head";

    /// <summary>A view partition's session claim: which client identity's session may commit to it now.</summary>
    public const string SessionRowKey = "h:session";
    public static string BlobName(string mailbox, string sha256) => $"{mailbox}/{sha256[..2]}/{sha256}.eml";

    /// <summary>A new, unique name for a pack of messages written at <paramref name="now"/>.</summary>
    public static string PackBlobName(string mailbox, DateTimeOffset now) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{mailbox}/packs/{now.UtcDateTime:yyyyMMdd}/{Guid.NewGuid():N}.pack");

    public static string ScopeValidityRowKey(string scope) => "v:" + Escape(scope);
    /// <summary>Seen-ledger rows of one message each, as versions before seen chunks wrote them (still read and forgotten).</summary>
    public static string SeenPrefix(string scope, string validity) => $"s:{Escape(scope)}:{Escape(validity)}:";

    /// <summary>Seen-ledger rows holding many messages each (see AzurePullLedger).</summary>
    public static string SeenChunkPrefix(string scope, string validity) => $"c:{Escape(scope)}:{Escape(validity)}:";
    public static string FailurePrefix => "f:";
    public static string FailureRowKey(string scope, string key) => $"f:{Escape(scope)}:{Escape(key)}";

    public static string RunsPartition(string account) => "pull:" + account;
    public static string RunRowKey(DateTimeOffset started) => (DateTimeOffset.MaxValue.UtcTicks - started.UtcTicks).ToString("D19", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Escapes text for use in a PartitionKey/RowKey, which may not contain '/', '\', '#', '?' or control
    /// characters: those (and '%' and ':') become %XX, so the escaping is reversible and keeps ':' as a separator.
    /// </summary>
    public static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (rune.Value is '/' or '\\' or '#' or '?' or '%' or ':' || rune.Value < 0x20 || rune.Value is >= 0x7F and <= 0x9F)
                sb.Append('%').Append(rune.Value.ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            else
                sb.Append(rune.ToString());
        }
        return sb.ToString();
    }

    /// <summary>Reverses <see cref="Escape"/>.</summary>
    public static string Unescape(string text) => Uri.UnescapeDataString(text);

    /// <summary>The smallest key greater than every key starting with <paramref name="prefix"/>.</summary>
    public static string PrefixEnd(string prefix) => prefix[..^1] + (char)(prefix[^1] + 1);
}
