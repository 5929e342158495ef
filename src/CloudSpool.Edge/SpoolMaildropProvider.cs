using System.Collections.Concurrent;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// Opens a client identity's view of its mailbox for one session: the mailbox's messages from the local index
/// minus those this client (or, in a shared-delete mailbox, any client) hid with DELE+QUIT. One session at a time
/// per client identity (per mailbox in shared-delete mode), across every edge process on the storage: a second gets
/// [IN-USE].
/// </summary>
/// <remarks>
/// The cross-process rule is a blob lease held for the session; when storage is unreachable the edge falls back to
/// this process's own rule and says so in its log. A crashed edge's lease expires after the lease duration.
/// </remarks>
public sealed class SpoolMaildropProvider(SpoolMirror mirror, IClientViewStore views, ILeaseManager? leases, SpoolEdgeOptions options, ILogger<SpoolMaildropProvider> logger) : IMaildropProvider
{
    /// <summary>The view name under which shared-delete mailboxes keep what any client deleted.</summary>
    internal const string SharedView = "*";

    private readonly ConcurrentDictionary<(string Mailbox, string Client), byte> _open = new();
    private readonly ConcurrentDictionary<(string Mailbox, string View), (string? Token, IReadOnlySet<string>? Keys)> _views = new();

    /// <summary>Client identities with a session now.</summary>
    public int OpenSessions => _open.Count;

    public async ValueTask<Pop3MaildropResult> OpenAsync(Pop3Identity identity, CancellationToken cancellationToken)
    {
        if (identity is not SpoolIdentity id)
            return Pop3MaildropResult.Unavailable($"identity {identity?.Name} was not authenticated by the spool");
        var shared = options.SharedDeleteMailboxes.Contains(id.Mailbox);
        var key = (id.Mailbox, shared ? SharedView : id.Client);
        if (!_open.TryAdd(key, 0))
        {
            EdgeLog.InUse(logger, id.Client);
            return Pop3MaildropResult.InUse;
        }
        ILease? lease = null;
        // The session lease, the view and the index's catch-up are independent storage calls: made at once, a login
        // waits for the slowest of them instead of their sum.
        var leaseTask = AcquireLeaseAsync(id, key.Item2, cancellationToken);
        var hiddenTask = HiddenAsync(id, cancellationToken);
        var snapshotTask = mirror.SnapshotForLoginAsync(id.Mailbox, cancellationToken);
        try
        {
            try
            {
                var (acquired, inUse) = await leaseTask.ConfigureAwait(false);
                lease = acquired;
                if (inUse)
                {
                    Release(key);
                    EdgeLog.InUse(logger, id.Client);
                    await ObserveAsync(hiddenTask, snapshotTask).ConfigureAwait(false);
                    return Pop3MaildropResult.InUse;
                }
            }
            catch
            {
                await ObserveAsync(hiddenTask, snapshotTask).ConfigureAwait(false);
                throw;
            }

            IReadOnlySet<string> hidden;
            try
            {
                hidden = await hiddenTask.ConfigureAwait(false);
            }
            catch
            {
                await ObserveAsync(snapshotTask).ConfigureAwait(false);
                throw;
            }
            var snapshot = await snapshotTask.ConfigureAwait(false);
            var messages = snapshot.Where(m => !hidden.Contains(m.MessageKey)).ToList();
            SweepMarkersOfRemovedMessages(id, hidden, snapshot);
            EdgeLog.Opened(logger, id.Client, id.Mailbox, messages.Count, snapshot.Count - messages.Count);
            var drop = new SpoolMaildrop(mirror, views, id, shared ? SharedView : id.Client, messages, lease, () => Release(key), this, logger);
            lease = null;
            return Pop3MaildropResult.Opened(drop);
        }
        catch (Exception ex)
        {
            Release(key);
            if (lease is not null)
                await lease.DisposeAsync().ConfigureAwait(false);
            if (ex is OperationCanceledException)
                throw;
            EdgeLog.SnapshotFailed(logger, ex, id.Client, id.Mailbox);
            return Pop3MaildropResult.Unavailable($"the view of {id.Mailbox} for {id.Client} could not be read: {ex.Message}");
        }
    }

    /// <summary>
    /// The cross-process session lease: (lease, false) when taken, (null, true) when another session holds it, and
    /// (null, false) when storage does not answer (this process's own rule still holds; logged).
    /// </summary>
    private async Task<(ILease? Lease, bool InUse)> AcquireLeaseAsync(SpoolIdentity id, string view, CancellationToken cancellationToken)
    {
        if (leases is null)
            return (null, false);
        try
        {
            var lease = await mirror.Health.CallAsync(ct => leases.TryAcquireAsync($"pop3/{id.Mailbox}/{view}", ct), cancellationToken).ConfigureAwait(false);
            return (lease, lease is null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            EdgeLog.SessionLeaseUnavailable(logger, ex, id.Client);
            return (null, false);
        }
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

    /// <summary>
    /// What the client may not see: its own hidden messages and the mailbox's shared ones, each from storage (or as
    /// last read when storage does not answer).
    /// </summary>
    private async Task<IReadOnlySet<string>> HiddenAsync(SpoolIdentity id, CancellationToken cancellationToken)
    {
        var ownTask = ViewAsync(id, id.Client, cancellationToken);
        var sharedTask = ViewAsync(id, SharedView, cancellationToken);
        await ObserveAsync(ownTask, sharedTask).ConfigureAwait(false);
        var all = new HashSet<string>(await ownTask.ConfigureAwait(false), StringComparer.Ordinal);
        all.UnionWith(await sharedTask.ConfigureAwait(false));
        return all;
    }

    /// <summary>
    /// One view's hidden keys. The view's change token is read first: when it is the one seen with the keys held
    /// here, they are still right and the listing (a query that scans the table on Azurite) is skipped.
    /// </summary>
    private async Task<IReadOnlySet<string>> ViewAsync(SpoolIdentity id, string view, CancellationToken cancellationToken)
    {
        var key = (id.Mailbox, view);
        _views.TryGetValue(key, out var cached);
        try
        {
            var token = await mirror.Health.CallAsync(ct => views.ChangeTokenAsync(id.Mailbox, view, ct), cancellationToken).ConfigureAwait(false);
            if (token is not null && cached.Keys is not null && string.Equals(token, cached.Token, StringComparison.Ordinal))
                return cached.Keys;
            var keys = await mirror.Health.CallAsync(ct => views.ListHiddenAsync(id.Mailbox, view, ct), cancellationToken).ConfigureAwait(false);
            _views[key] = (token, keys);
            return keys;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && cached.Keys is not null)
        {
            EdgeLog.ServingCachedView(logger, ex, id.Client, id.Mailbox);
            return cached.Keys;
        }
    }

    /// <summary>
    /// Markers older than the oldest message of the mailbox belong to messages retention removed: they are dropped in
    /// the background so a view partition does not grow forever. (Keys grow with commit time and retention removes
    /// the oldest first, so nothing still in the spool is older than the oldest key.)
    /// </summary>
    private void SweepMarkersOfRemovedMessages(SpoolIdentity id, IReadOnlySet<string> hidden, IReadOnlyList<SpoolIndexEntry> snapshot)
    {
        if (snapshot.Count == 0 || hidden.Count == 0)
            return;
        var oldest = snapshot[0].MessageKey;
        var stale = hidden.Where(k => string.CompareOrdinal(k, oldest) < 0).ToList();
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
            catch (Exception ex)
            {
                EdgeLog.MarkerSweepFailed(logger, ex, id.Client, id.Mailbox);
            }
        });
    }

    /// <summary>Remembers messages a session hid, so the next login sees them hidden even if storage is not reachable then.</summary>
    internal void Remember(string mailbox, string view, IEnumerable<string> hidden) => Update((mailbox, view), keys => keys.Union(hidden, StringComparer.Ordinal));

    /// <summary>Changes the keys held for a view; its token is dropped, so the next login lists the view again.</summary>
    private void Update((string Mailbox, string View) key, Func<IEnumerable<string>, IEnumerable<string>> change) =>
        _views.AddOrUpdate(key,
            _ => (null, change([]).ToHashSet(StringComparer.Ordinal)),
            (_, old) => (null, change((IEnumerable<string>?)old.Keys ?? []).ToHashSet(StringComparer.Ordinal)));

    private void Release((string Mailbox, string Client) key) => _open.TryRemove(key, out _);
}

/// <summary>One session's snapshot of a client's view: sizes and UIDLs from the index, bytes from the cache or Blob.</summary>
internal sealed class SpoolMaildrop : IMaildrop
{
    private readonly SpoolMirror _mirror;
    private readonly IClientViewStore _views;
    private readonly SpoolIdentity _identity;
    private readonly string _view;
    private readonly IReadOnlyList<SpoolIndexEntry> _messages;
    private readonly SpoolMaildropProvider _provider;
    private readonly ILogger _logger;
    private ILease? _lease;
    private Action? _release;

    public SpoolMaildrop(SpoolMirror mirror, IClientViewStore views, SpoolIdentity identity, string view, IReadOnlyList<SpoolIndexEntry> messages,
        ILease? lease, Action release, SpoolMaildropProvider provider, ILogger logger)
    {
        _mirror = mirror;
        _views = views;
        _identity = identity;
        _view = view;
        _messages = messages;
        _lease = lease;
        _release = release;
        _provider = provider;
        _logger = logger;
        Messages = messages.Select(m => new Pop3MessageInfo(m.Uidl, m.Pop3Size, m.BareCrAsCrlf)).ToList();
    }

    public IReadOnlyList<Pop3MessageInfo> Messages { get; }

    public async ValueTask<Stream> OpenAsync(int index, CancellationToken cancellationToken)
    {
        var message = _messages[index];
        try
        {
            return await _mirror.OpenAsync(message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The library answers -ERR [SYS/TEMP] for this RETR/TOP only; the session goes on.
            EdgeLog.OpenFailed(_logger, ex, _identity.Client, _identity.Mailbox, message.MessageKey);
            throw;
        }
    }

    /// <remarks>
    /// QUIT ends the session whatever this returns, so the client identity is released here, before the library
    /// answers the QUIT: a client that logs in again as soon as it has the reply is not refused with [IN-USE].
    /// </remarks>
    public async ValueTask CommitDeletesAsync(IReadOnlySet<int> indexes, CancellationToken cancellationToken)
    {
        try
        {
            if (indexes.Count == 0)
                return;
            var keys = indexes.Order().Select(i => _messages[i].MessageKey).ToList();
            await _views.HideAsync(_identity.Mailbox, _view, keys, cancellationToken).ConfigureAwait(false);
            _provider.Remember(_identity.Mailbox, _view, keys);
            EdgeLog.Hidden(_logger, _identity.Client, _identity.Mailbox, keys.Count);
        }
        finally
        {
            await DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _lease, null) is { } lease)
            await lease.DisposeAsync().ConfigureAwait(false);
        Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}
