using CloudSpool.Pop3;

namespace CloudSpool.Edge;

/// <summary>
/// A logged-in client identity of the edge: <see cref="Pop3Identity.Name"/> is the client identity
/// (<c>alice</c> or <c>alice+laptop</c>), whose view of <paramref name="Mailbox"/> the session sees.
/// </summary>
/// <param name="Client">The client identity (the login name, lower case).</param>
/// <param name="User">The POP3 user whose password was checked.</param>
/// <param name="Mailbox">The spool mailbox the user reads.</param>
public sealed record SpoolIdentity(string Client, string User, string Mailbox) : Pop3Identity(Client);
