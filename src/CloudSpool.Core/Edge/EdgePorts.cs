namespace CloudSpool.Core.Edge;

/// <summary>A POP3 user of the edge: who may log in, which mailbox they read, and their password hash.</summary>
/// <param name="Name">User name (lower-case letters, digits, '.', '_', '-'); logins <c>NAME</c> and <c>NAME+CLIENT</c> use it.</param>
/// <param name="Mailbox">The spool mailbox the user reads.</param>
/// <param name="PasswordHash">ASP.NET Core Identity password hash (never the password).</param>
public sealed record Pop3User(string Name, string Mailbox, string PasswordHash);

/// <summary>POP3 users, shared by every edge and the CLI.</summary>
public interface IPop3UserStore
{
    Task<Pop3User?> GetAsync(string name, CancellationToken cancellationToken);

    Task<IReadOnlyList<Pop3User>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Adds a user; false when one of that name exists.</summary>
    Task<bool> AddAsync(Pop3User user, CancellationToken cancellationToken);

    /// <summary>Replaces an existing user; false when there is none of that name.</summary>
    Task<bool> UpdateAsync(Pop3User user, CancellationToken cancellationToken);

    /// <summary>Removes a user; false when there was none.</summary>
    Task<bool> RemoveAsync(string name, CancellationToken cancellationToken);
}

/// <summary>
/// Per-client views of a mailbox: the messages one client identity (e.g. <c>alice+laptop</c>) deleted with
/// DELE+QUIT, hidden from that identity only. The spool itself keeps them until retention removes them.
/// </summary>
public interface IClientViewStore
{
    /// <summary>Message keys hidden for <paramref name="client"/> in <paramref name="mailbox"/>.</summary>
    Task<IReadOnlySet<string>> ListHiddenAsync(string mailbox, string client, CancellationToken cancellationToken);

    /// <summary>
    /// Hides messages for one client identity, for a session that could not claim the view; idempotent. It moves the
    /// view's claim as a claim does (without taking it): every session's fence goes stale, and a claim made on the claim
    /// as it was before fails, so no reader takes the view for unchanged since that claim.
    /// </summary>
    Task HideAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken);

    /// <summary>Drops the markers of messages that are gone from the spool (removed by retention); idempotent.</summary>
    Task ForgetAsync(string mailbox, string client, IReadOnlyCollection<string> messageKeys, CancellationToken cancellationToken);

    /// <summary>
    /// Merges a view's many small records (one a QUIT) into few, keeping every hidden key; returns how many records were
    /// merged (0 when the view has few). Needs a credential that may delete: <see cref="UnauthorizedAccessException"/> otherwise.
    /// </summary>
    Task<int> CompactAsync(string mailbox, string view, CancellationToken cancellationToken) => Task.FromResult(0);

    /// <summary>The views a mailbox has in the store (client identities, and the shared view of a shared-delete mailbox).</summary>
    Task<IReadOnlyList<string>> ListViewsAsync(string mailbox, CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>
    /// An opaque value that changes whenever <see cref="HideAsync"/> adds to the view (in the same transaction), so a
    /// reader holding the keys listed with the same value can skip listing them again; null when not known.
    /// </summary>
    Task<string?> ChangeTokenAsync(string mailbox, string client, CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    /// <summary>The latest session claim of a view (see <see cref="ClaimAsync"/>).</summary>
    Task<ViewClaim> ReadClaimAsync(string mailbox, string view, CancellationToken cancellationToken);

    /// <summary>
    /// Claims a view for a new session of <paramref name="client"/>, provided its claim is still <paramref name="seen"/>:
    /// every earlier session's fence goes stale, so its <see cref="CommitHiddenAsync"/> can no longer hide anything.
    /// Returns the new session's fence, or null when the claim changed since it was read (read it again).
    /// </summary>
    Task<string?> ClaimAsync(string mailbox, string view, string client, ViewClaim seen, CancellationToken cancellationToken);

    /// <summary>
    /// Marks the view's claim as applying a QUIT, so a new session waits for it (<see cref="ViewClaim.Committing"/>);
    /// returns the fence to commit with, or null when a newer session has claimed the view.
    /// </summary>
    Task<string?> BeginCommitAsync(string mailbox, string view, string fence, CancellationToken cancellationToken);

    /// <summary>
    /// Hides messages for a session whose claim is <paramref name="fence"/> (from <see cref="BeginCommitAsync"/>), in the
    /// transactions that check the fence, and ends the commit mark. False when a newer session claimed the view: nothing
    /// was hidden (of a commit larger than one transaction, what the transactions before the claim held stays hidden).
    /// </summary>
    Task<bool> CommitHiddenAsync(string mailbox, string view, IReadOnlyCollection<string> messageKeys, string fence, CancellationToken cancellationToken);
}

/// <summary>Who last claimed a view for a session, and whether that session is applying its QUIT now.</summary>
/// <param name="Fence">Opaque; changes with every claim and commit step (null: never claimed).</param>
/// <param name="Client">The client identity that claimed it (null: never claimed).</param>
/// <param name="Committing">That session has begun applying its QUIT and not finished.</param>
public sealed record ViewClaim(string? Fence, string? Client, bool Committing);
