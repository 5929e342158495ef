using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Search;

namespace CloudSpool.Upstream;

/// <summary>
/// IMAP folders as scopes; keys are UIDs, valid within the folder's UIDVALIDITY (RFC 3501 section 2.3.1.1).
/// Messages are read with BODY.PEEK in bounded chunks (partial fetch), so neither \Seen flags change nor
/// does a large message sit whole in memory.
/// </summary>
internal sealed class ImapUpstreamSession(ImapClient client, AccountDefinition account) : IUpstreamSession
{
    private const int ChunkSize = 4 << 20;
    private IMailFolder? _folder;
    private readonly List<UpstreamMessage> _deleted = [];
    private int _messages;
    private int _leftFlagged;
    private long _bytes;
    private bool _listed;
    private (long? Limit, long? Used) _quota;

    public IReadOnlyList<string> Scopes => account.Folders;

    /// <summary>What the folders listed (an empty mailbox is 0 messages, not unknown), with the server's quota if it has one.</summary>
    public UpstreamMailboxStatus? Status => _listed
        ? new UpstreamMailboxStatus(_messages, _bytes, _quota.Limit, _quota.Used) { LeftFlaggedDeleted = _leftFlagged }
        : null;

    public async Task<ScopeListing> OpenScopeAsync(string scope, CancellationToken cancellationToken)
    {
        try
        {
            var folder = await client.GetFolderAsync(scope, cancellationToken).ConfigureAwait(false);
            var access = account.Leave.KeepsEverything ? FolderAccess.ReadOnly : FolderAccess.ReadWrite;
            await folder.OpenAsync(access, cancellationToken).ConfigureAwait(false);
            _folder = folder;
            _deleted.Clear();

            var messages = new List<UpstreamMessage>(folder.Count);
            if (folder.Count > 0)
            {
                var summaries = await folder.FetchAsync(0, -1, MessageSummaryItems.UniqueId | MessageSummaryItems.Size, cancellationToken).ConfigureAwait(false);
                foreach (var s in summaries.OrderBy(s => s.UniqueId.Id))
                    messages.Add(new UpstreamMessage(s.UniqueId.Id.ToString("D10", System.Globalization.CultureInfo.InvariantCulture), s.Size ?? 0, s.UniqueId));
            }
            _messages += messages.Count;
            _bytes += messages.Sum(m => m.Size);
            if (!_listed)
                _quota = await QuotaAsync(folder, cancellationToken).ConfigureAwait(false);
            _listed = true;
            return new ScopeListing(scope, folder.UidValidity.ToString(System.Globalization.CultureInfo.InvariantCulture), messages);
        }
        catch (FolderNotFoundException ex)
        {
            throw new UpstreamException(UpstreamErrorKind.Configuration, $"{account.Host} has no folder '{scope}'", ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, $"opening folder {scope}");
        }
    }

    /// <summary>
    /// The storage limit and usage of the folder's quota root (RFC 2087 GETQUOTAROOT, in units of 1024 octets), when the
    /// server has the QUOTA extension; (null, null) when it has not or will not say (never a reason to fail the run).
    /// </summary>
    private async Task<(long? Limit, long? Used)> QuotaAsync(IMailFolder folder, CancellationToken cancellationToken)
    {
        if (!client.Capabilities.HasFlag(ImapCapabilities.Quota))
            return (null, null);
        try
        {
            var quota = await folder.GetQuotaAsync(cancellationToken).ConfigureAwait(false);
            return (quota.StorageLimit is { } limit ? limit * 1024L : null, quota.CurrentStorageSize is { } used ? used * 1024L : null);
        }
        catch (Exception ex) when (ex is ImapCommandException or NotSupportedException)
        {
            return (null, null);
        }
    }

    public async Task FetchAsync(UpstreamMessage message, Stream destination, CancellationToken cancellationToken)
    {
        var folder = _folder ?? throw new InvalidOperationException("no folder is open");
        var uid = (UniqueId)message.Handle;
        try
        {
            for (var offset = 0; ; offset += ChunkSize)
            {
                // BODY.PEEK[]<offset.count> (RFC 3501 section 6.4.5): a short chunk means the end of the message.
                using var chunk = await folder.GetStreamAsync(uid, offset, ChunkSize, cancellationToken).ConfigureAwait(false);
                var before = destination.Position;
                await chunk.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
                if (destination.Position - before < ChunkSize)
                    break;
            }
        }
        catch (MessageNotFoundException ex)
        {
            throw new UpstreamMessageException("message was expunged before it could be fetched", ex);
        }
        catch (ImapCommandException ex)
        {
            throw new UpstreamMessageException($"server refused FETCH: {ex.Response} {ex.ResponseText}", ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, $"FETCH of UID {uid}");
        }
    }

    public async Task MarkDeletedAsync(UpstreamMessage message, CancellationToken cancellationToken)
    {
        var folder = _folder ?? throw new InvalidOperationException("no folder is open");
        var uid = (UniqueId)message.Handle;
        try
        {
            await folder.AddFlagsAsync(uid, MessageFlags.Deleted, silent: true, cancellationToken).ConfigureAwait(false);
            _deleted.Add(message);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "STORE \\Deleted");
        }
    }

    public async Task<IReadOnlySet<string>> SeenFlaggedAsync(CancellationToken cancellationToken)
    {
        var folder = _folder ?? throw new InvalidOperationException("no folder is open");
        try
        {
            var uids = await folder.SearchAsync(SearchQuery.Seen, cancellationToken).ConfigureAwait(false);
            return uids.Select(u => u.Id.ToString("D10", System.Globalization.CultureInfo.InvariantCulture)).ToHashSet(StringComparer.Ordinal);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "search");
        }
    }

    public async Task<IReadOnlyList<UpstreamMessage>> CloseScopeAsync(CancellationToken cancellationToken)
    {
        var folder = _folder;
        if (folder is null)
            return [];
        try
        {
            IReadOnlyList<UpstreamMessage> expunged = [];
            if (_deleted.Count > 0)
            {
                // Only UID EXPUNGE (RFC 4315) removes just the messages this run marked. A plain EXPUNGE would also remove
                // what other clients flagged \Deleted, and what a first run taken as seen never stored: without UIDPLUS
                // the messages stay flagged, and status says so.
                if ((client.Capabilities & ImapCapabilities.UidPlus) != 0)
                {
                    await folder.ExpungeAsync([.. _deleted.Select(m => (UniqueId)m.Handle)], cancellationToken).ConfigureAwait(false);
                    expunged = [.. _deleted];
                }
                else
                {
                    _leftFlagged += _deleted.Count;
                }
            }
            await folder.CloseAsync(expunge: false, cancellationToken).ConfigureAwait(false);
            return expunged;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "EXPUNGE");
        }
        finally
        {
            _folder = null;
        }
    }

    public async Task<IReadOnlyList<UpstreamMessage>> CommitAsync(CancellationToken cancellationToken)
    {
        try
        {
            // Every deletion was applied (or left flagged) when its folder was closed.
            await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
            return [];
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "LOGOUT");
        }
    }

    public ValueTask DisposeAsync()
    {
        client.Dispose();
        return ValueTask.CompletedTask;
    }
}
