using CloudSpool.Core.Spool;
using MimeKit;

namespace CloudSpool.Core.Forward;

/// <summary>What `rules test` and `rules explain` show: the forward job's decisions, without sending anything.</summary>
public sealed partial class ForwardRunner
{
    /// <summary>What `rules test` shows: the last <paramref name="count"/> messages, the decision and what trimming would make of them.</summary>
    public async Task<IReadOnlyList<ForwardPreview>> PreviewAsync(int count, CancellationToken cancellationToken)
    {
        var result = new List<ForwardPreview>();
        var destination = options.Destinations.FirstOrDefault() ?? new ForwardDestination { Address = "phone@example.invalid" };
        var sender = MailboxAddress.TryParse(options.Sender ?? "", out var s) ? s : new MailboxAddress("", "cloudspool@example.invalid");
        foreach (var message in await control.RecentMessagesAsync(options.Mailbox!, count, cancellationToken).ConfigureAwait(false))
        {
            var loaded = await LoadAsync(message, cancellationToken).ConfigureAwait(false);
            using (loaded.Temp)
            {
                if (loaded.Source is null)
                {
                    result.Add(new ForwardPreview(message, new ForwardDecision(ForwardAction.Skip, $"the stored message could not be read: {loaded.Error}"), "nothing would be sent"));
                    continue;
                }
                var decision = Rules.Decide(ForwardFacts.Create(loaded.Source, message.SourceAccount, message.RawLength, message.Summary));
                var outcome = "nothing would be sent";
                if (decision.Forwards)
                {
                    var addressing = new ForwardAddressing(sender, MailboxAddress.Parse(destination.Address!), "preview@cloudspool.invalid", message.MessageKey, message.ReceivedAt);
                    var copy = decision.Action == ForwardAction.ForwardAsIs
                        ? ForwardTrimmer.AsIs(loaded.Source, addressing)
                        : ForwardTrimmer.Trim(loaded.Source, new TrimLimits(destination.MaxBytes, destination.KeepAttachmentTypes), addressing);
                    outcome = copy.Message is null ? $"nothing would be sent: {copy.SkipReason}" : $"would send {Describe(copy)} to {destination.Address}";
                }
                result.Add(new ForwardPreview(message, decision, outcome));
            }
        }
        return result;
    }

    /// <summary>Why a message was or was not forwarded, one line per destination (for `messages show` and `forward status`).</summary>
    public async Task<IReadOnlyList<string>> ExplainAsync(SpoolMessage message, CancellationToken cancellationToken)
    {
        var rows = await ledger.ListForMessageAsync(message.Mailbox, message.MessageKey, cancellationToken).ConfigureAwait(false);
        var state = await control.GetSwitchAsync(cancellationToken).ConfigureAwait(false);
        var lines = new List<string>();
        foreach (var row in rows)
        {
            var when = row.NextAttemptAt is { } next && row.State == ForwardState.Retry ? $", next attempt after {next:u}" : "";
            lines.Add($"{row.Destination}: {row.State.ToString().ToLowerInvariant()} at {row.UpdatedAt:u} after {row.Attempts} attempt(s){when}: {row.Reason}");
        }
        if (rows.Count == 0)
        {
            if (!options.Configured || message.Mailbox != options.Mailbox)
                lines.Add("not forwarded: forwarding is not configured for this mailbox");
            else if (state.Watermark is not null && state.IsBacklog(message.MessageKey))
                lines.Add($"not forwarded: it was already in the mailbox when forwarding was switched on ({state.ChangedAt:u}; the backlog is never forwarded)");
            else if (!state.IsOnAt(clock.GetUtcNow()))
                lines.Add($"not forwarded: forwarding is off ({state.Note})");
            else
                lines.Add("not forwarded yet: waiting for the next forward run");
        }
        else if (!state.IsOnAt(clock.GetUtcNow()) && rows.Any(r => !r.IsFinal))
        {
            lines.Add($"forwarding is off ({state.Note}): unfinished forwards are not sent");
        }
        return lines;
    }
}
