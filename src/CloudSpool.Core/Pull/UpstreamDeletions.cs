using CloudSpool.Core.Accounts;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Pull;

/// <summary>
/// The messages one run marked for deletion upstream, until the server confirms them (POP3 at a QUIT answered +OK, IMAP
/// at UID EXPUNGE). Confirmed deletions are counted and their seen entries forgotten at once, not when a later run no
/// longer lists them: RFC 1939 keeps a UIDL unique only while its message exists, so a server whose UID state is reset
/// can give the next message the UIDL of one deleted here, and that message is new mail.
/// </summary>
internal sealed class UpstreamDeletions(IPullLedger ledger, ILogger logger, AccountDefinition account, RunCounters run)
{
    /// <summary>A message marked for deletion, with the scope and validity of its seen entry.</summary>
    private sealed record Marked(ScopeRef Scope, UpstreamMessage Message);

    private readonly List<Marked> _marked = [];

    /// <summary>Marks a message on the upstream session; only for a message whose stored copy is committed.</summary>
    public async Task MarkAsync(IUpstreamSession session, ScopeRef scope, UpstreamMessage message, CancellationToken ct)
    {
        await session.MarkDeletedAsync(message, ct).ConfigureAwait(false);
        _marked.Add(new Marked(scope, message));
    }

    /// <summary>Counts the deletions the server confirmed and forgets their seen entries.</summary>
    public async Task ConfirmAsync(IReadOnlyList<UpstreamMessage> confirmed)
    {
        if (confirmed.Count == 0)
            return;
        var gone = confirmed.ToHashSet(ReferenceEqualityComparer.Instance);
        var deleted = _marked.Where(m => gone.Contains(m.Message)).ToList();
        _marked.RemoveAll(m => gone.Contains(m.Message));
        run.Deleted += deleted.Count;
        foreach (var scope in deleted.GroupBy(m => m.Scope))
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                await ledger.ForgetSeenAsync(account.Name, scope.Key.Name, scope.Key.Validity, [.. scope.Select(m => m.Message.Key)], timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // The mail is safe (stored, then deleted upstream). The next run forgets entries no longer listed, and a
                // listed message whose size differs from its entry is fetched as new whatever its key.
                CoreLog.SeenNotForgotten(logger, account.Name, scope.Key.Label, scope.Count(), ex.Message);
            }
        }
    }
}
