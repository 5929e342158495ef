using System.Collections.Concurrent;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Spool;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>
/// Opens a client identity's view of its mailbox for one session: the mailbox's messages in the spool minus
/// those this client hid with DELE+QUIT. One session at a time per client identity (a second gets [IN-USE]).
/// </summary>
/// <remarks>
/// The one-session rule is kept in this process only (MVP): two edge processes on the same storage do not see
/// each other's sessions. The snapshot is read from the Table metadata at login; there is no local index yet.
/// </remarks>
public sealed class SpoolMaildropProvider(ISpoolReader spool, IClientViewStore views, ILogger<SpoolMaildropProvider> logger) : IMaildropProvider
{
    private readonly ConcurrentDictionary<(string Mailbox, string Client), byte> _open = new();

    /// <summary>Client identities with a session now.</summary>
    public int OpenSessions => _open.Count;

    public async ValueTask<Pop3MaildropResult> OpenAsync(Pop3Identity identity, CancellationToken cancellationToken)
    {
        if (identity is not SpoolIdentity id)
            return Pop3MaildropResult.Unavailable($"identity {identity?.Name} was not authenticated by the spool");
        var key = (id.Mailbox, id.Client);
        if (!_open.TryAdd(key, 0))
        {
            EdgeLog.InUse(logger, id.Client);
            return Pop3MaildropResult.InUse;
        }
        try
        {
            var hidden = await views.ListHiddenAsync(id.Mailbox, id.Client, cancellationToken).ConfigureAwait(false);
            var messages = new List<SpoolMessage>();
            var hiddenSeen = 0;
            await foreach (var message in spool.ListAsync(id.Mailbox, null, cancellationToken).ConfigureAwait(false))
            {
                if (hidden.Contains(message.MessageKey))
                    hiddenSeen++;
                else
                    messages.Add(message);
            }
            EdgeLog.Opened(logger, id.Client, id.Mailbox, messages.Count, hiddenSeen);
            return Pop3MaildropResult.Opened(new SpoolMaildrop(spool, views, id, messages, () => Release(key), logger));
        }
        catch (Exception ex)
        {
            Release(key);
            if (ex is OperationCanceledException)
                throw;
            EdgeLog.SnapshotFailed(logger, ex, id.Client, id.Mailbox);
            return Pop3MaildropResult.Unavailable($"the view of {id.Mailbox} for {id.Client} could not be read: {ex.Message}");
        }
    }

    private void Release((string Mailbox, string Client) key) => _open.TryRemove(key, out _);
}

/// <summary>One session's snapshot of a client's view: sizes and UIDLs from metadata, bytes streamed from Blob.</summary>
internal sealed class SpoolMaildrop : IMaildrop
{
    private readonly ISpoolReader _spool;
    private readonly IClientViewStore _views;
    private readonly SpoolIdentity _identity;
    private readonly IReadOnlyList<SpoolMessage> _messages;
    private readonly ILogger _logger;
    private Action? _release;

    public SpoolMaildrop(ISpoolReader spool, IClientViewStore views, SpoolIdentity identity, IReadOnlyList<SpoolMessage> messages, Action release, ILogger logger)
    {
        _spool = spool;
        _views = views;
        _identity = identity;
        _messages = messages;
        _release = release;
        _logger = logger;
        Messages = messages.Select(m => new Pop3MessageInfo(m.Uidl, m.Pop3Size)).ToList();
    }

    public IReadOnlyList<Pop3MessageInfo> Messages { get; }

    public async ValueTask<Stream> OpenAsync(int index, CancellationToken cancellationToken)
    {
        var message = _messages[index];
        try
        {
            return await _spool.OpenRawAsync(message, cancellationToken).ConfigureAwait(false);
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
        await _views.HideAsync(_identity.Mailbox, _identity.Client, keys, cancellationToken).ConfigureAwait(false);
        EdgeLog.Hidden(_logger, _identity.Client, _identity.Mailbox, keys.Count);
    }

    public ValueTask DisposeAsync()
    {
        Interlocked.Exchange(ref _release, null)?.Invoke();
        return ValueTask.CompletedTask;
    }
}
