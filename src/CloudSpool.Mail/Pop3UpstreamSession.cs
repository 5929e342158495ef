using System.Security.Cryptography;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using MailKit.Net.Pop3;

namespace CloudSpool.Mail;

/// <summary>
/// A POP3 maildrop as one scope. Keys are the server's UIDL (RFC 1939 section 7); for a server without
/// UIDL, a hash of the message's header block (TOP n 0) and size. DELE only marks; the deletions apply
/// at QUIT in <see cref="CommitAsync"/>, and a session disposed without it deletes nothing.
/// </summary>
/// <remarks>MailKit buffers one message at a time in memory while it is retrieved (POP3 has no partial fetch).</remarks>
internal sealed class Pop3UpstreamSession(Pop3Client client, AccountDefinition account) : IUpstreamSession
{
    public const string Validity = "pop3";

    public IReadOnlyList<string> Scopes { get; } = [""];
    public UpstreamMailboxStatus? Status { get; private set; }

    public async Task<ScopeListing> OpenScopeAsync(string scope, CancellationToken cancellationToken)
    {
        try
        {
            var sizes = await client.GetMessageSizesAsync(cancellationToken).ConfigureAwait(false);
            IList<string> keys;
            if ((client.Capabilities & Pop3Capabilities.UIDL) != 0)
                keys = (await client.GetMessageUidsAsync(cancellationToken).ConfigureAwait(false)).Select(u => "u:" + u).ToList();
            else
                keys = await HeaderKeysAsync(sizes, cancellationToken).ConfigureAwait(false);

            Status = new UpstreamMailboxStatus(sizes.Count, sizes.Sum(s => (long)s));
            var messages = new List<UpstreamMessage>(sizes.Count);
            for (var i = 0; i < sizes.Count; i++)
                messages.Add(new UpstreamMessage(keys[i], sizes[i], i));
            return new ScopeListing(scope, Validity, messages);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "listing");
        }
    }

    private async Task<IList<string>> HeaderKeysAsync(IList<int> sizes, CancellationToken ct)
    {
        if ((client.Capabilities & Pop3Capabilities.Top) == 0)
            throw new UpstreamException(UpstreamErrorKind.Protocol, $"{account.Host} supports neither UIDL nor TOP: messages cannot be told apart between runs");
        var keys = new List<string>(sizes.Count);
        for (var i = 0; i < sizes.Count; i++)
        {
            using var headers = await client.GetStreamAsync(i, headersOnly: true, ct).ConfigureAwait(false);
            var hash = await SHA256.HashDataAsync(headers, ct).ConfigureAwait(false);
            keys.Add($"h:{Convert.ToHexStringLower(hash)[..32]}-{sizes[i]}");
        }
        return keys;
    }

    public async Task FetchAsync(UpstreamMessage message, Stream destination, CancellationToken cancellationToken)
    {
        try
        {
            using var stream = await client.GetStreamAsync((int)message.Handle, headersOnly: false, cancellationToken).ConfigureAwait(false);
            await stream.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
        }
        catch (Pop3CommandException ex)
        {
            // -ERR for this message (RFC 1939 section 9): the session is still usable.
            throw new UpstreamMessageException($"server refused RETR: {ex.StatusText}", ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, $"RETR of message {message.Key}");
        }
    }

    public async Task MarkDeletedAsync(UpstreamMessage message, CancellationToken cancellationToken)
    {
        try
        {
            await client.DeleteMessageAsync((int)message.Handle, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "DELE");
        }
    }

    public Task CloseScopeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task CommitAsync(CancellationToken cancellationToken)
    {
        try
        {
            // QUIT enters the UPDATE state: the server removes the messages marked with DELE.
            await client.DisconnectAsync(quit: true, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, "QUIT");
        }
    }

    public ValueTask DisposeAsync()
    {
        // Closing without QUIT: per RFC 1939 the server deletes nothing.
        client.Dispose();
        return ValueTask.CompletedTask;
    }
}
