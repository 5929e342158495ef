using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Forwarding state on Azure: the away switch and progress cursors in the control table, the exactly-once ledger in
/// the forwards table (see <see cref="StorageNames"/>), rows claimed and updated with ETags.
/// </summary>
public sealed class AzureForwardStore(AzureStorage storage, TimeProvider clock) : IForwardControl, IForwardLedger
{
    /// <summary>How far back the tail of a mailbox is looked for, widening until something is found (last: everything).</summary>
    private static readonly TimeSpan[] TailWindows =
        [TimeSpan.FromHours(1), TimeSpan.FromDays(1), TimeSpan.FromDays(7), TimeSpan.FromDays(31), TimeSpan.FromDays(366), TimeSpan.FromDays(3660)];

    public async Task<ForwardSwitchState> GetSwitchAsync(CancellationToken cancellationToken)
    {
        var row = await storage.Control.GetEntityIfExistsAsync<TableEntity>(StorageNames.ForwardPartition, StorageNames.ForwardSwitchRow, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (!row.HasValue)
            return new ForwardSwitchState { On = false, Note = "never switched on" };
        var e = row.Value!;
        return new ForwardSwitchState
        {
            On = e.GetBoolean("On") ?? false,
            Until = e.GetDateTimeOffset("Until"),
            Watermark = e.GetString("Watermark"),
            ChangedAt = e.GetDateTimeOffset("ChangedAt") ?? default,
            Note = e.GetString("Note"),
        };
    }

    public Task SetSwitchAsync(ForwardSwitchState state, CancellationToken cancellationToken) =>
        storage.ForwardSwitch.UpsertEntityAsync(new TableEntity(StorageNames.ForwardPartition, StorageNames.ForwardSwitchRow)
        {
            ["On"] = state.On,
            ["Until"] = state.Until,
            ["Watermark"] = state.Watermark,
            ["ChangedAt"] = state.ChangedAt,
            ["Note"] = state.Note,
        }, TableUpdateMode.Replace, cancellationToken);

    public async Task<string?> GetCursorAsync(string mailbox, CancellationToken cancellationToken)
    {
        var row = await storage.Control.GetEntityIfExistsAsync<TableEntity>(StorageNames.ForwardCursorPartition, mailbox, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? row.Value!.GetString("Cursor") : null;
    }

    public Task SetCursorAsync(string mailbox, string cursor, CancellationToken cancellationToken) =>
        storage.Control.UpsertEntityAsync(new TableEntity(StorageNames.ForwardCursorPartition, mailbox) { ["Cursor"] = cursor }, TableUpdateMode.Replace, cancellationToken);

    /// <summary>A reader of the mailboxes' messages (it keeps nothing a writer changes).</summary>
    private readonly AzureSpool _messages = new(storage, clock);

    public async Task<string?> LastMessageKeyAsync(string mailbox, CancellationToken cancellationToken) =>
        (await TailAsync(1, from => _messages.ListIndexAsync(mailbox, from, cancellationToken)).ConfigureAwait(false))
        .LastOrDefault()?.MessageKey;

    public async Task<IReadOnlyList<SpoolMessage>> RecentMessagesAsync(string mailbox, int count, CancellationToken cancellationToken) =>
        await TailAsync(count, from => _messages.ListAsync(mailbox, from, cancellationToken)).ConfigureAwait(false);

    /// <summary>
    /// The newest <paramref name="count"/> messages, oldest first. Table storage lists in ascending key order only, so
    /// this reads ranges from ever earlier ingest instants until one holds enough: it touches the mailbox's tail, not all of it.
    /// </summary>
    private async Task<IReadOnlyList<T>> TailAsync<T>(int count, Func<string?, IAsyncEnumerable<T>> list)
    {
        var now = clock.GetUtcNow();
        List<T> rows = [];
        foreach (var window in TailWindows.Append(TimeSpan.MaxValue))
        {
            var from = window == TimeSpan.MaxValue ? null : StorageNames.MessageRowKeyAt(now - window);
            rows = [];
            await foreach (var e in list(from).ConfigureAwait(false))
                rows.Add(e);
            if (rows.Count >= count || from is null)
                break;
        }
        return rows.Skip(Math.Max(0, rows.Count - count)).ToList();
    }

    public async Task<IReadOnlyList<ForwardEntry>> ListAfterAsync(string mailbox, string? afterKey, CancellationToken cancellationToken)
    {
        var filter = afterKey is null
            ? TableClient.CreateQueryFilter($"PartitionKey eq {mailbox}")
            : TableClient.CreateQueryFilter($"PartitionKey eq {mailbox} and RowKey gt {StorageNames.ForwardRowsEnd(afterKey)}");
        return await QueryAsync(filter, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<ForwardEntry>> ListForMessageAsync(string mailbox, string messageKey, CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {mailbox} and RowKey gt {messageKey + "|"} and RowKey lt {StorageNames.ForwardRowsEnd(messageKey)}");
        return await QueryAsync(filter, cancellationToken).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<ForwardEntry>> QueryAsync(string filter, CancellationToken cancellationToken)
    {
        var result = new List<ForwardEntry>();
        await foreach (var e in storage.Forwards.QueryAsync<TableEntity>(filter, cancellationToken: cancellationToken).ConfigureAwait(false))
            result.Add(FromEntity(e));
        return result;
    }

    public async Task<ForwardEntry?> TryWriteAsync(string mailbox, ForwardEntry entry, CancellationToken cancellationToken)
    {
        var row = new TableEntity(mailbox, StorageNames.ForwardRowKey(entry.MessageKey, entry.Destination))
        {
            ["MessageKey"] = entry.MessageKey,
            ["Destination"] = entry.Destination,
            ["State"] = entry.State.ToString(),
            ["Reason"] = entry.Reason.Length > 4000 ? entry.Reason[..4000] : entry.Reason,
            ["SmtpMessageId"] = entry.SmtpMessageId,
            ["Attempts"] = entry.Attempts,
            ["UpdatedAt"] = entry.UpdatedAt,
            ["NextAttemptAt"] = entry.NextAttemptAt,
        };
        try
        {
            var response = entry.Version is null
                ? await storage.Forwards.AddEntityAsync(row, cancellationToken).ConfigureAwait(false)
                : await storage.Forwards.UpdateEntityAsync(row, new ETag(entry.Version), TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            return entry with { Version = response.Headers.ETag?.ToString() };
        }
        catch (RequestFailedException ex) when (ex.IsConflict() || ex.IsPreconditionFailed())
        {
            return null; // another writer claimed or changed it first
        }
    }

    private static ForwardEntry FromEntity(TableEntity e) => new()
    {
        MessageKey = e.GetString("MessageKey"),
        Destination = e.GetString("Destination"),
        State = Enum.TryParse<ForwardState>(e.GetString("State"), out var state) ? state : ForwardState.Retry,
        Reason = e.GetString("Reason") ?? "",
        SmtpMessageId = e.GetString("SmtpMessageId"),
        Attempts = e.GetInt32("Attempts") ?? 0,
        UpdatedAt = e.GetDateTimeOffset("UpdatedAt") ?? default,
        NextAttemptAt = e.GetDateTimeOffset("NextAttemptAt"),
        Version = e.ETag.ToString(),
    };
}
