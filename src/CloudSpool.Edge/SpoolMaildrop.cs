using System.Collections.Concurrent;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Spool;
using CloudSpool.Pop3;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Edge;

/// <summary>One session's snapshot of a client's view: sizes and UIDLs from the index, bytes from the cache or Blob.</summary>
internal sealed class SpoolMaildrop : IMaildrop
{
    private const int Open = 0, Committing = 1, Superseded = 2, Ended = 3;

    private readonly SpoolMirror _mirror;
    private readonly IClientViewStore _views;
    private readonly SpoolIdentity _identity;
    private readonly string _view;
    private readonly IReadOnlyList<SpoolIndexEntry> _messages;
    private readonly string? _fence;
    private readonly ConcurrentDictionary<(string Mailbox, string View), SpoolMaildrop> _open;
    private readonly (string Mailbox, string View) _key;
    private readonly SpoolMaildropProvider _provider;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _revoked = new();
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _attaching;
    private CancellationTokenRegistration _leaseLost;
    private ILease? _lease;
    private int _state;
    private volatile bool _wroteClaim;

    // lease: the session lease once storage answers (never fails; null: none); fence: the view's session claim (null:
    // storage did not answer at login; this process's rule only); open: where the provider keeps the open session of
    // key, from which this one removes itself when it ends.
    public SpoolMaildrop(SpoolMirror mirror, IClientViewStore views, SpoolIdentity identity, string view, IReadOnlyList<SpoolIndexEntry> messages,
        Task<ILease?>? lease, string? fence, ConcurrentDictionary<(string Mailbox, string View), SpoolMaildrop> open, (string Mailbox, string View) key,
        SpoolMaildropProvider provider, ILogger logger)
    {
        _mirror = mirror;
        _views = views;
        _identity = identity;
        _view = view;
        _messages = messages;
        _fence = fence;
        _open = open;
        _key = key;
        _provider = provider;
        _logger = logger;
        Messages = new Pop3Infos(messages);
        _attaching = lease is null ? Task.CompletedTask : AttachAsync(lease);
    }

    /// <summary>Holds the session lease once it is settled (the session may be serving already), until the session ends.</summary>
    private async Task AttachAsync(Task<ILease?> settling)
    {
        if (await settling.ConfigureAwait(false) is not { } lease)
            return;
        _lease = lease;
        _leaseLost = lease.Lost.Register(() => _ = CheckClaimAsync());
    }

    public IReadOnlyList<Pop3MessageInfo> Messages { get; }

    /// <summary>What POP3 needs of each index entry, made as it is read: a session of 100,000 messages copies nothing.</summary>
    private sealed class Pop3Infos(IReadOnlyList<SpoolIndexEntry> entries) : IReadOnlyList<Pop3MessageInfo>
    {
        public Pop3MessageInfo this[int index]
        {
            get
            {
                var entry = entries[index];
                return new Pop3MessageInfo(entry.Uidl, entry.Pop3Size, entry.BareCrAsCrlf);
            }
        }

        public int Count => entries.Count;

        public IEnumerator<Pop3MessageInfo> GetEnumerator()
        {
            for (var i = 0; i < entries.Count; i++)
                yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    public CancellationToken Revoked => _revoked.Token;

    // The highest message index this session has asked to be read ahead in the listing's order.
    private int _readAheadUntil = -1;

    // Every message this session asked to be read ahead, either way; null until the first.
    private System.Collections.BitArray? _asked;

    // The last message opened, and whether the session was then picking messages out of the listing's order.
    private int _lastOpened = -1;
    private bool _picking;

    /// <summary>
    /// Opening message <paramref name="index"/>: the next messages of the listing are fetched in the background, so a
    /// client walking it in order finds them cached. Each index is asked for once per session, in batches: the window
    /// is filled again only when less than half of it is left ahead, so neighbours in one pack are asked for together
    /// and read with one request.
    /// </summary>
    private void ReadAheadFrom(int index)
    {
        var ahead = _mirror.ReadAheadMessages;
        if (Volatile.Read(ref _readAheadUntil) - index > ahead / 2)
            return;
        var until = Math.Min(_messages.Count - 1, index + ahead);
        var from = Math.Max(index + 1, Volatile.Read(ref _readAheadUntil) + 1);
        if (from > until)
            return;
        Volatile.Write(ref _readAheadUntil, until);
        AskAhead(Enumerable.Range(from, until - from + 1), until - from + 1);
    }

    /// <summary>Asks for up to <paramref name="most"/> of the messages at <paramref name="indexes"/> this session has not asked for yet to be read ahead.</summary>
    private void AskAhead(IEnumerable<int> indexes, int most)
    {
        var asked = _asked ??= new System.Collections.BitArray(_messages.Count);
        var wanted = new List<SpoolIndexEntry>();
        foreach (var next in indexes)
        {
            if (wanted.Count == most)
                break;
            if (asked[next])
                continue;
            asked[next] = true;
            wanted.Add(_messages[next]);
        }
        if (wanted.Count > 0)
            _mirror.ReadAhead(wanted);
    }

    /// <summary>
    /// Opening message <paramref name="index"/> with the client's pipelined RETR and TOP commands for
    /// <paramref name="upcoming"/> waiting: a client going on in the listing's order reads ahead as
    /// <see cref="ReadAheadFrom"/> does; one that picks messages here and there (new mail among kept mail) gets what it
    /// asked for read ahead instead of the listing's next messages, each once per session, at most the read-ahead window
    /// at a time and in batches, and the last message it picked reads nothing ahead.
    /// </summary>
    private void ReadAheadFor(int index, IReadOnlyList<int> upcoming)
    {
        // With nothing pipelined, a session that was picking goes on picking unless it opens the next message.
        var inOrder = upcoming.Count > 0 ? upcoming[0] == index + 1 : !_picking || index == _lastOpened + 1;
        _picking = !inOrder;
        _lastOpened = index;
        if (inOrder)
        {
            ReadAheadFrom(index);
            return;
        }
        var ahead = _mirror.ReadAheadMessages;
        if (ahead == 0)
            return;
        // As in the listing's order, in batches: asked again once less than half of the window is left ahead, so
        // neighbours in one pack are asked for together.
        var outstanding = _asked is { } asked ? upcoming.Count(next => asked[next]) : 0;
        if (outstanding <= ahead / 2)
            AskAhead(upcoming, ahead - outstanding);
    }

    /// <summary>The client identity of the session.</summary>
    public string Client => _identity.Client;

    public ValueTask<Stream> OpenAsync(int index, CancellationToken cancellationToken) => OpenAsync(index, [], cancellationToken);

    public async ValueTask<Stream> OpenAsync(int index, IReadOnlyList<int> upcoming, CancellationToken cancellationToken)
    {
        var message = _messages[index];
        ReadAheadFor(index, upcoming);
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

    /// <summary>
    /// A newer login of this client takes the view over: a session that is not applying its QUIT is revoked at once (it
    /// will never commit); returns when the session has let go of the view (after its commit, when it was applying
    /// one), or after <paramref name="wait"/>.
    /// </summary>
    public async Task TakeOverAsync(TimeSpan wait)
    {
        Revoke();
        try
        {
            await _ended.Task.WaitAsync(wait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Still committing or closing: the storage claim fences it from here on.
        }
    }

    private void Revoke()
    {
        if (Interlocked.CompareExchange(ref _state, Superseded, Open) != Open)
            return;
        EdgeLog.TakenOver(_logger, _identity.Client, _identity.Mailbox);
        _ = _revoked.CancelAsync();
    }

    /// <summary>
    /// The session lease could not be renewed: either another edge took the session over (it broke the lease after
    /// claiming the view) or storage does not answer. Only the first ends the session.
    /// </summary>
    private async Task CheckClaimAsync()
    {
        try
        {
            var claim = await _views.ReadClaimAsync(_identity.Mailbox, _view, CancellationToken.None).ConfigureAwait(false);
            if (Volatile.Read(ref _state) == Open && !string.Equals(claim.Fence, _fence, StringComparison.Ordinal))
                Revoke();
        }
        catch (Exception)
        {
            // Storage does not answer (the lease manager logged the failed renewal): the session goes on; should another
            // edge have claimed the view meanwhile, this session's commit fails on the claim.
        }
    }

    /// <remarks>
    /// QUIT ends the session whatever this returns, so the client identity is released here, before the library
    /// answers the QUIT: a client that logs in again as soon as it has the reply finds the view free. A session that
    /// was taken over hides nothing: here, once revoked; across edges, by the claim its commit is conditional on.
    /// </remarks>
    public async ValueTask CommitDeletesAsync(IReadOnlySet<int> indexes, CancellationToken cancellationToken)
    {
        try
        {
            if (Interlocked.CompareExchange(ref _state, Committing, Open) != Open)
                throw TakenOver(logged: true);
            if (indexes.Count == 0)
                return;
            var keys = indexes.Order().Select(i => _messages[i].MessageKey).ToList();
            _wroteClaim = true;
            if (_fence is null)
            {
                await _views.HideAsync(_identity.Mailbox, _view, keys, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var fence = await _views.BeginCommitAsync(_identity.Mailbox, _view, _fence, cancellationToken).ConfigureAwait(false) ?? throw TakenOver();
                if (!await _views.CommitHiddenAsync(_identity.Mailbox, _view, keys, fence, cancellationToken).ConfigureAwait(false))
                    throw TakenOver();
            }
            _provider.Remember(_identity.Mailbox, _view, keys);
            EdgeLog.Hidden(_logger, _identity.Client, _identity.Mailbox, keys.Count);
        }
        finally
        {
            await DisposeAsync().ConfigureAwait(false);
        }
    }

    private InvalidOperationException TakenOver(bool logged = false)
    {
        if (!logged)
            EdgeLog.TakenOver(_logger, _identity.Client, _identity.Mailbox);
        return new InvalidOperationException($"a newer login of {_identity.Client} took the session over; its deletions were not applied");
    }

    public async ValueTask DisposeAsync()
    {
        var ending = Interlocked.Exchange(ref _state, Ended);
        if (ending == Ended)
            return;
        // Not taken over and nothing committed: the view's claim row is as this session's claim left it.
        if (ending != Superseded && !_wroteClaim && _fence is not null)
            _provider.RememberFence(_key, _fence);
        // A lease still being settled is waited for (at most the storage time limit), so it is let go of here too.
        await _attaching.ConfigureAwait(false);
        await _leaseLost.DisposeAsync().ConfigureAwait(false);
        if (Interlocked.Exchange(ref _lease, null) is { } lease)
            await lease.DisposeAsync().ConfigureAwait(false);
        _open.TryRemove(KeyValuePair.Create(_key, this));
        _ended.TrySetResult();
    }
}
