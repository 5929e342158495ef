namespace CloudSpool.Core.Import;

/// <summary>Messages an old tool fetched, as seen-ledger keys of one scope and validity.</summary>
/// <param name="Scope">"" for POP3, the folder for IMAP.</param>
/// <param name="Validity">The validity the pull lists the scope under: the POP3 constant, or the folder's UIDVALIDITY.</param>
/// <param name="Keys">Ledger keys: <c>u:UIDL</c> for POP3, the UID as ten digits for IMAP.</param>
/// <param name="Source">The file they were read from.</param>
public sealed record ImportedSeen(string Scope, string Validity, IReadOnlyList<string> Keys, string Source);
