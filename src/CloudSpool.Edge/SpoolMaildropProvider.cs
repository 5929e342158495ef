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
    private readonly ConcurrentDictionary<(string Mailbox, string Client), IReadOnlySet<string>> _hidden = new();

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
        try
        {
            if (leases is not null)
            {
                try
                {
                    lease = await mirror.Health.CallAsync(ct => leases.TryAcquireAsync($"pop3/{id.Mailbox}/{key.Item2}", ct), cancellationToken).ConfigureAwait(false);
                    if (lease is null)
                    {
                        Release(key);
                        EdgeLog.InUse(logger, id.Client);
                        return Pop3MaildropResult.InUse;
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    EdgeLog.SessionLeaseUnavailable(logger, ex, id.Client);
                }
            }

            var hidden = await HiddenAsync(id, cancellationToken).ConfigureAwait(false);
            var snapshot = await mirror.SnapshotForLoginAsync(id.Mailbox, cancellationToken).ConfigureAwait(false);
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
    /// What the client may not see: its own hidden messages and the mailbox's shared ones, read from storage, or
    /// as last read in this process when storage does not answer.
    /// </summary>
    private async Task<IReadOnlySet<string>> HiddenAsync(SpoolIdentity id, CancellationToken cancellationToken)
    {
        var key = (id.Mailbox, id.Client);
        try
        {
            var own = await mirror.Health.CallAsync(ct => views.ListHiddenAsync(id.Mailbox, id.Client, ct), cancellationToken).ConfigureAwait(false);
            var shared = await mirror.Health.CallAsync(ct => views.ListHiddenAsync(id.Mailbox, SharedView, ct), cancellationToken).ConfigureAwait(false);
            var all = new HashSet<string>(own, StringComparer.Ordinal);
            all.UnionWith(shared);
            _hidden[key] = all;
            return all;
        }
        catch (Exception ex) when (ex is not OperationCanceledException && _hidden.TryGetValue(key, out var cached))
        {
            EdgeLog.ServingCachedView(logger, ex, id.Client, id.Mailbox);
            return cached;
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
                _hidden.AddOrUpdate((id.Mailbox, id.Client), _ => new HashSet<string>(StringComparer.Ordinal),
                    (_, old) => old.Except(stale, StringComparer.Ordinal).ToHashSet(StringComparer.Ordinal));
                EdgeLog.MarkersSwept(logger, id.Client, id.Mailbox, stale.Count);
            }
            catch (Exception ex)
            {
                EdgeLog.MarkerSweepFailed(logger, ex, id.Client, id.Mailbox);
            }
        });
    }

    /// <summary>Remembers messages a session hid, so the next login sees them hidden even if storage is not reachable then.</summary>
    internal void Remember(SpoolIdentity id, IEnumerable<string> keys)
    {
        _hidden.AddOrUpdate((id.Mailbox, id.Client),
            _ => new HashSet<string>(keys, StringComparer.Ordinal),
            (_, old) =>
            {
                var merged = new HashSet<string>(old, StringComparer.Ordinal);
                merged.UnionWith(keys);
                return merged;
            });
    }

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
        Messages = messages.Select(m => new Pop3MessageInfo(m.Uidl, m.Pop3Size)).ToList();
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

    public async ValueTask CommitDeletesAsync(IReadOnlySet<int> indexes, CancellationToken cancellationToken)
    {
        if (indexes.Count == 0)
            return;
        var keys = indexes.Order().Select(i => _messages[i].MessageKey).ToList();
        await _views.HideAsync(_identity.Mailbox, _view, keys, cancellationToken).ConfigureAwait(false);
        _provider.Remember(_identity, keys);
        EdgeLog.Hidden(_logger, _identity.Client, _identity.Mailbox, keys.Count);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _lease, null) is { } lease)
            await lease.DisposeAsync().ConfigureAwait(false);
        Interlocked.Exchange(ref _release, null)?.Invoke();
    }
}
