using System.Collections.Concurrent;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Spool;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// Opens a client identity's view of its mailbox for one session: the mailbox's messages from the local index
/// minus those this client (or, in a shared-delete mailbox, any client) hid with DELE+QUIT. One session at a time
/// per client identity (per mailbox in shared-delete mode), across every edge process on the storage: a new login of
/// the same identity takes over (the earlier session ends at once and its DELE marks are never applied; one that is
/// applying its QUIT finishes first), while in a shared-delete mailbox another identity gets [IN-USE].
/// </summary>
/// <remarks>
/// Across processes, the view's session claim (an ETag'd row in the view's partition) is the fence: a new session
/// claims it before reading the view, and a commit is one transaction conditional on its own claim, so a superseded
/// session cannot hide anything once the new one has read the view. A blob lease held for the session tells a live
/// holder from a gone one and lets the superseded edge notice (its renewal fails once the lease is broken). When
/// storage is unreachable the edge falls back to this process's own rule and says so in its log.
/// </remarks>
public sealed class SpoolMaildropProvider(SpoolMirror mirror, IClientViewStore views, ILeaseManager? leases, SpoolEdgeOptions options, ILogger<SpoolMaildropProvider> logger) : IMaildropProvider
{
    /// <summary>The view name under which shared-delete mailboxes keep what any client deleted.</summary>
    internal const string SharedView = "*";

    /// <summary>How long a new login waits for an earlier session of its identity to finish applying its QUIT.</summary>
    internal static readonly TimeSpan TakeoverWait = TimeSpan.FromSeconds(15);

    private readonly ConcurrentDictionary<(string Mailbox, string View), SpoolMaildrop> _open = new();
    private readonly ConcurrentDictionary<(string Mailbox, string View), SemaphoreSlim> _opening = new();
    private readonly ConcurrentDictionary<(string Mailbox, string View), (string? Token, IReadOnlySet<string>? Keys)> _views = new();
    private readonly ConcurrentDictionary<(string Mailbox, string View), string> _lastFences = new();
    private readonly ConcurrentDictionary<(string Mailbox, string View), ShownList> _shown = new();

    /// <summary>Set once storage refused a marker deletion for want of permission (an edge on its SAS): no more sweeps.</summary>
    private volatile bool _sweepRefused;
    private readonly ConcurrentDictionary<(string Mailbox, string View), byte> _compacting = new();

    /// <summary>Client identities with a session now.</summary>
    public int OpenSessions => _open.Count;

    public async ValueTask<Pop3MaildropResult> OpenAsync(Pop3Identity identity, CancellationToken cancellationToken)
    {
        if (identity is not SpoolIdentity id)
            return Pop3MaildropResult.Unavailable($"identity {identity?.Name} was not authenticated by the spool");
        var key = (id.Mailbox, options.SharedDeleteMailboxes.Contains(id.Mailbox) ? SharedView : id.Client);
        // The index's catch-up does not depend on who holds the view: it runs while the view is claimed. Nor does the
        // change token of the view this session does not claim (the client's own in a shared-delete mailbox, else the
        // shared one): no claim of this session orders the commits to it.
        var snapshotTask = mirror.SnapshotForLoginAsync(id.Mailbox, cancellationToken);
        var otherView = key.Item2 == SharedView ? id.Client : SharedView;
        var otherToken = TokenAsync(id.Mailbox, otherView, cancellationToken);
        // Logins of one view in this process one after the other: each takes over from the one before.
        var opening = _opening.GetOrAdd(key, _ => new SemaphoreSlim(1, 1));
        Task<ILease?>? lease = null;
        try
        {
            await opening.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var deadline = DateTimeOffset.UtcNow + TakeoverWait;
                if (_open.TryGetValue(key, out var earlier))
                {
                    if (!string.Equals(earlier.Client, id.Client, StringComparison.Ordinal))
                        return await InUseAsync(id, snapshotTask, otherToken).ConfigureAwait(false);
                    await earlier.TakeOverAsync(TakeoverWait).ConfigureAwait(false);
                }
                var (claimed, fence, inUse, claimedToken) = await ClaimAsync(id, key, deadline, cancellationToken).ConfigureAwait(false);
                if (inUse)
                    return await InUseAsync(id, snapshotTask, otherToken).ConfigureAwait(false);
                lease = claimed;
                // The claimed view's token was read after the claim it was made on (see ClaimAsync): a QUIT that finished
                // before the claim is in it, and none can land after it. Without a claim (storage did not answer), read now.
                var ownToken = claimedToken ?? TokenAsync(id.Mailbox, key.Item2, cancellationToken);
                var hiddenTasks = new[] { ViewAsync(id, key.Item2, ownToken, cancellationToken), ViewAsync(id, otherView, otherToken, cancellationToken) };
                await ObserveAsync(hiddenTasks).ConfigureAwait(false);
                var own = await hiddenTasks[0].ConfigureAwait(false);
                var other = await hiddenTasks[1].ConfigureAwait(false);
                var snapshot = await snapshotTask.ConfigureAwait(false);
                var messages = Shown(key, snapshot, own, other);
                SweepMarkersOfRemovedMessages(id, own, other, snapshot);
                CompactViews(id, key.Item2, otherView);
                EdgeLog.Opened(logger, id.Client, id.Mailbox, messages.Count, snapshot.Count - messages.Count);
                var drop = new SpoolMaildrop(mirror, views, id, key.Item2, messages, lease, fence, _open, key, this, logger);
                lease = null;
                _open[key] = drop;
                return Pop3MaildropResult.Opened(drop);
            }
            finally
            {
                opening.Release();
            }
        }
        catch (Exception ex)
        {
            await ObserveAsync(snapshotTask, otherToken).ConfigureAwait(false);
            if (lease is not null && await lease.ConfigureAwait(false) is { } held)
                await held.DisposeAsync().ConfigureAwait(false);
            if (ex is OperationCanceledException)
                throw;
            EdgeLog.SnapshotFailed(logger, ex, id.Client, id.Mailbox);
            return Pop3MaildropResult.Unavailable($"the view of {id.Mailbox} for {id.Client} could not be read: {ex.Message}");
        }
    }

    /// <summary>
    /// The messages of <paramref name="snapshot"/> that neither view hides, in order. The list is kept with what it was
    /// made from, and the next login of the view with the same snapshot and the same hidden keys (a client polling a
    /// mailbox where nothing changed) gets it again: a mailbox of 100,000 messages is not filtered, nor copied, at
    /// every login. The lists are never changed, so sessions share them.
    /// </summary>
    private IReadOnlyList<SpoolIndexEntry> Shown((string Mailbox, string View) key, IReadOnlyList<SpoolIndexEntry> snapshot, IReadOnlySet<string> own, IReadOnlySet<string> other)
    {
        if (own.Count == 0 && other.Count == 0)
        {
            _shown.TryRemove(key, out _);
            return snapshot;
        }
        if (_shown.TryGetValue(key, out var last) && ReferenceEquals(last.Snapshot, snapshot) && ReferenceEquals(last.Own, own) && ReferenceEquals(last.Other, other))
            return last.Messages;
        var messages = snapshot.Where(m => !own.Contains(m.MessageKey) && !other.Contains(m.MessageKey)).ToArray();
        _shown[key] = new ShownList(snapshot, own, other, messages);
        return messages;
    }

    private sealed record ShownList(IReadOnlyList<SpoolIndexEntry> Snapshot, IReadOnlySet<string> Own, IReadOnlySet<string> Other, IReadOnlyList<SpoolIndexEntry> Messages);

    private async Task<Pop3MaildropResult> InUseAsync(SpoolIdentity id, params Task[] started)
    {
        EdgeLog.InUse(logger, id.Client);
        await ObserveAsync(started).ConfigureAwait(false);
        return Pop3MaildropResult.InUse;
    }

    /// <summary>
    /// Claims the view across processes: waits (until <paramref name="deadline"/>) while an earlier session applies its
    /// QUIT, claims the view, and takes the session lease, from its holder when that is an earlier session of the same
    /// client identity. (lease, fence, false, token) when claimed; (null, null, true, null) when a live session of another
    /// identity holds a shared-delete mailbox; (null, null, false, null) when storage does not answer (this process's own
    /// rule still holds; logged). The lease is a task settled after the login is answered (see
    /// <see cref="SettleLeaseAsync"/>), and it never fails (null: none held).
    /// </summary>
    /// <remarks>
    /// The token is the view's change token, read after the claim row was seen and while the claim is written: every
    /// commit step rewrites the claim row, so when the claim made on the row as seen succeeds, no commit landed since it
    /// was seen, and the token holds every commit before the claim. The row is seen by reading it, or, for the view of
    /// one client identity whose last session here ended without writing to it, as that session left it (its fence):
    /// the claim is then made without reading the row, and when the row changed since (another edge claimed it), the
    /// claim fails and the row is read. Every write to a view moves its claim row (a commit, and a hide without a
    /// claim), so when the claim on the row as this edge's last session left it succeeds, the view is as that session
    /// found it, and its token is the one held here with the keys: it is not read again. In such a view the lease only
    /// tells whether an earlier session is to be taken over, so it is asked for alongside and not waited for: the claim
    /// already fences the session, and a store that answers one request at a time (Azurite) answers the login one
    /// request sooner. In a shared-delete mailbox the lease's holder decides whether this login is let in, so whether it
    /// is free is known before the claim; taking it over from an earlier session of the same identity waits, as in
    /// every view, until the login is answered. A login of a client polling through one edge thus waits for one round
    /// trip of storage here.
    /// </remarks>
    private async Task<(Task<ILease?>? Lease, string? Fence, bool InUse, Task<string?>? Token)> ClaimAsync(SpoolIdentity id, (string Mailbox, string View) key, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var view = key.View;
        var name = $"pop3/{id.Mailbox}/{view}";
        var shared = view == SharedView;
        ILease? lease = null;
        Task<ILease?>? taking = null;
        Task<string?>? token = null;
        string? last = null;
        var remembered = !shared && _lastFences.TryRemove(key, out last);
        var seen = remembered ? new ViewClaim(last, id.Client, false) : null;
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                if (leases is not null && lease is null && taking is null)
                    taking = mirror.Health.CallAsync(ct => leases.TryAcquireAsync(name, ct), cancellationToken);
                if (seen is null)
                {
                    remembered = false;
                    seen = await mirror.Health.CallAsync(ct => views.ReadClaimAsync(id.Mailbox, view, ct), cancellationToken).ConfigureAwait(false);
                    if (seen.Committing && DateTimeOffset.UtcNow < deadline)
                    {
                        lease ??= await TakenAsync().ConfigureAwait(false);
                        await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
                        seen = null;
                        continue;
                    }
                }
                if (shared)
                {
                    lease ??= await TakenAsync().ConfigureAwait(false);
                    // Only a session of the same identity is taken over (a shared-delete mailbox keeps one reader at a time).
                    if (leases is not null && lease is null && !string.Equals(seen.Client, id.Client, StringComparison.Ordinal))
                        return (null, null, true, null);
                }
                token = remembered && HeldToken(key) is { } held ? Task.FromResult<string?>(held) : TokenAsync(id.Mailbox, view, cancellationToken);
                var claim = seen;
                var fence = await mirror.Health.CallAsync(ct => views.ClaimAsync(id.Mailbox, view, id.Client, claim, ct), cancellationToken).ConfigureAwait(false);
                if (fence is null)
                {
                    await ObserveAsync(token).ConfigureAwait(false);
                    token = null;
                    seen = null;
                    if (attempt < 10)
                        continue;
                    throw new InvalidOperationException($"the session claim of {name} kept changing");
                }
                // The claim fences every earlier session: the lease (taken, or taken over from an earlier session of
                // this identity) is settled after the answer, and a take-over that fails leaves the session fenced.
                var pending = lease is null && taking is not null ? taking : Task.FromResult(lease);
                taking = null;
                return (SettleLeaseAsync(id, name, pending), fence, false, token);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            if (token is not null)
                await ObserveAsync(token).ConfigureAwait(false);
            if (taking is not null)
                await ObserveAsync(taking).ConfigureAwait(false);
            if (taking is { IsCompletedSuccessfully: true, Result: { } late })
                await late.DisposeAsync().ConfigureAwait(false);
            if (lease is not null)
                await lease.DisposeAsync().ConfigureAwait(false);
            EdgeLog.SessionLeaseUnavailable(logger, ex, id.Client);
            return (null, null, false, null);
        }

        // The lease asked for, once it is answered (null: another session holds it); the next attempt asks again.
        async Task<ILease?> TakenAsync()
        {
            if (taking is null)
                return null;
            var task = taking;
            taking = null;
            return await task.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The session lease of a claimed view, once storage answers: taken, or taken over from its holder (see
    /// <see cref="TakeOverAsync"/>). Null when storage did not answer: the claim still fences the session, so it goes on
    /// without a lease (logged).
    /// </summary>
    private async Task<ILease?> SettleLeaseAsync(SpoolIdentity id, string name, Task<ILease?> taking)
    {
        try
        {
            var lease = await taking.ConfigureAwait(false);
            if (lease is not null || leases is null)
                return lease;
            return await TakeOverAsync(leases, id, name, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            if (ex is not OperationCanceledException)
                EdgeLog.SessionLeaseUnavailable(logger, ex, id.Client);
            return null;
        }
    }

    /// <summary>
    /// Takes the session lease from its holder: a session of this identity that the claim superseded already (on another
    /// edge, or one here that did not let go in time); breaking its lease makes its edge notice and close it.
    /// </summary>
    private Task<ILease?> TakeOverAsync(ILeaseManager leases, SpoolIdentity id, string name, CancellationToken cancellationToken)
    {
        EdgeLog.TakingOver(logger, id.Client, id.Mailbox);
        return mirror.Health.CallAsync(ct => leases.TakeOverAsync(name, ct), cancellationToken);
    }

    /// <summary>
    /// A session of a client identity's own view ended without writing to its claim: the next login here may claim the
    /// view on the row as this session left it (see <see cref="ClaimAsync"/>).
    /// </summary>
    internal void RememberFence((string Mailbox, string View) key, string fence)
    {
        if (key.View != SharedView)
            _lastFences[key] = fence;
    }

    /// <summary>Waits for calls whose results are no longer wanted, so none of them fails unobserved.</summary>
    private static async Task ObserveAsync(params Task[] tasks)
    {
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // The login already failed or was refused for another reason; the snapshot and view errors are logged there.
        }
    }

    /// <summary>The change token of the keys of a view held here, if any.</summary>
    private string? HeldToken((string Mailbox, string View) key) =>
        _views.TryGetValue(key, out var held) && held.Keys is not null ? held.Token : null;

    /// <summary>A view's change token from storage (see <see cref="IClientViewStore.ChangeTokenAsync"/>).</summary>
    private Task<string?> TokenAsync(string mailbox, string view, CancellationToken cancellationToken) =>
        mirror.Health.CallAsync(ct => views.ChangeTokenAsync(mailbox, view, ct), cancellationToken);

    /// <summary>
    /// One view's hidden keys, from storage or as last read when storage does not answer. When the view's change token
    /// is the one seen with the keys held here, they are still right and the listing (a query that scans the table on
    /// Azurite) is skipped.
    /// </summary>
    private async Task<IReadOnlySet<string>> ViewAsync(SpoolIdentity id, string view, Task<string?> tokenTask, CancellationToken cancellationToken)
    {
        var key = (id.Mailbox, view);
        try
        {
            var token = await tokenTask.ConfigureAwait(false);
            _views.TryGetValue(key, out var cached);
            if (token is not null && cached.Keys is not null && string.Equals(token, cached.Token, StringComparison.Ordinal))
                return cached.Keys;
            var keys = await mirror.Health.CallAsync(ct => views.ListHiddenAsync(id.Mailbox, view, ct), cancellationToken).ConfigureAwait(false);
            _views[key] = (token, keys);
            return keys;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && _views.TryGetValue(key, out var last) && last.Keys is not null)
        {
            EdgeLog.ServingCachedView(logger, ex, id.Client, id.Mailbox);
            return last.Keys;
        }
    }

    /// <summary>
    /// Markers older than the oldest message of the mailbox belong to messages retention removed: they are dropped in
    /// the background so a view partition does not grow forever. (Keys grow with commit time and retention removes
    /// the oldest first, so nothing still in the spool is older than the oldest key.)
    /// </summary>
    private void SweepMarkersOfRemovedMessages(SpoolIdentity id, IReadOnlySet<string> own, IReadOnlySet<string> other, IReadOnlyList<SpoolIndexEntry> snapshot)
    {
        if (snapshot.Count == 0 || (own.Count == 0 && other.Count == 0) || _sweepRefused)
            return;
        var oldest = snapshot[0].MessageKey;
        var stale = ViewUpkeep.StaleMarkers(own.Union(other, StringComparer.Ordinal), oldest);
        if (stale.Count == 0)
            return;
        _ = Task.Run(async () =>
        {
            try
            {
                await views.ForgetAsync(id.Mailbox, id.Client, stale, CancellationToken.None).ConfigureAwait(false);
                await views.ForgetAsync(id.Mailbox, SharedView, stale, CancellationToken.None).ConfigureAwait(false);
                Update((id.Mailbox, id.Client), keys => keys.Except(stale, StringComparer.Ordinal));
                Update((id.Mailbox, SharedView), keys => keys.Except(stale, StringComparer.Ordinal));
                EdgeLog.MarkersSwept(logger, id.Client, id.Mailbox, stale.Count);
            }
            catch (UnauthorizedAccessException ex)
            {
                // The edge's SAS deletes nothing: the markers stay (a few bytes each, never shown: their messages are gone).
                _sweepRefused = true;
                EdgeLog.MarkerSweepNotPermitted(logger, ex.Message);
            }
            catch (Exception ex)
            {
                EdgeLog.MarkerSweepFailed(logger, ex, id.Client, id.Mailbox);
            }
        });
    }

    /// <summary>
    /// Merges the small records a view gathers, one a QUIT, in the background once there are many (the store keeps count
    /// of what it listed, so a view with few costs nothing here).
    /// </summary>
    private void CompactViews(SpoolIdentity id, params string[] viewNames)
    {
        if (_sweepRefused)
            return;
        foreach (var view in viewNames)
        {
            if (!_compacting.TryAdd((id.Mailbox, view), 0))
                continue;
            _ = Task.Run(async () =>
            {
                try
                {
                    var merged = await views.CompactAsync(id.Mailbox, view, CancellationToken.None).ConfigureAwait(false);
                    if (merged > 0)
                        EdgeLog.ViewCompacted(logger, view, id.Mailbox, merged);
                }
                catch (UnauthorizedAccessException ex)
                {
                    _sweepRefused = true;
                    EdgeLog.MarkerSweepNotPermitted(logger, ex.Message);
                }
                catch (Exception ex)
                {
                    EdgeLog.ViewCompactionFailed(logger, ex, view, id.Mailbox);
                }
                finally
                {
                    _compacting.TryRemove((id.Mailbox, view), out _);
                }
            });
        }
    }

    /// <summary>Remembers messages a session hid, so the next login sees them hidden even if storage is not reachable then.</summary>
    internal void Remember(string mailbox, string view, IEnumerable<string> hidden) => Update((mailbox, view), keys => keys.Union(hidden, StringComparer.Ordinal));

    /// <summary>Changes the keys held for a view; its token is dropped, so the next login lists the view again.</summary>
    private void Update((string Mailbox, string View) key, Func<IEnumerable<string>, IEnumerable<string>> change) =>
        _views.AddOrUpdate(key,
            _ => (null, change([]).ToHashSet(StringComparer.Ordinal)),
            (_, old) => (null, change((IEnumerable<string>?)old.Keys ?? []).ToHashSet(StringComparer.Ordinal)));
}
