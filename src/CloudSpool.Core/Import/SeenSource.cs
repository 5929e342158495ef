namespace CloudSpool.Core.Import;

/// <summary>The format of an old tool's record of the mail it fetched.</summary>
public enum SeenFormat
{
    /// <summary>fetchmail's .fetchids: a line <c>user@server UIDL</c> per message kept on a POP3 server.</summary>
    Fetchids,

    /// <summary>mpop's UIDLs file: <c> COUNT host user</c> then one UIDL a line.</summary>
    MpopUidls,

    /// <summary>getmail's oldmail file: <c>UIDL\0TIME</c> (POP3) or <c>UIDVALIDITY/UID\0TIME</c> (IMAP) a line.</summary>
    GetmailOldmail,

    /// <summary>
    /// No file: the IMAP folder's messages with the \Seen flag, read from the server (fetchmail fetches the messages
    /// without it and sets it, and keeps no record of its own).
    /// </summary>
    ImapSeenFlag,

    /// <summary>No file: every message in the IMAP folder now, read from the server (fetchmail with fetchall fetched them all).</summary>
    ImapAll,
}

/// <summary>Where an account's record of fetched mail is, and which part of it is the account's.</summary>
/// <param name="Format">How it is written.</param>
/// <param name="Path">The file.</param>
/// <param name="Scope">The CloudSpool scope its entries belong to: "" for POP3, the folder for IMAP.</param>
/// <param name="Owners">For files shared by accounts: the owner names of this account's entries (fetchids: user@server; mpop: "host user").</param>
/// <param name="Required">Whether a missing file is an error (the old tool keeps mail upstream, so without it everything would be fetched again).</param>
public sealed record SeenSource(SeenFormat Format, string Path, string Scope, IReadOnlyList<string> Owners, bool Required);
