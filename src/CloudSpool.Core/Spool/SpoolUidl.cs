namespace CloudSpool.Core.Spool;

/// <summary>
/// The POP3 UIDL of a message in a mailbox: 40 characters of its dedup key, so it is stable, unique in the mailbox and
/// within RFC 1939's 1-70 characters of 0x21-0x7E. Every reader of the spool must see the same UIDL for the same message,
/// whichever adapter stored it.
/// </summary>
public static class SpoolUidl
{
    public static string For(string dedupKey) => dedupKey[..40];
}
