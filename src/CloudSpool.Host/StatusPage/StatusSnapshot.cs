using CloudSpool.Core.Forward;
using CloudSpool.Core.Spool;
using CloudSpool.Host.Cli;

namespace CloudSpool.Host.StatusPage;

/// <summary>One message of a mailbox's tail as the page lists it, with what the forward job did with it and why.</summary>
internal sealed record RecentMail(SpoolMessage Message, IReadOnlyList<string> Forwarding);

/// <summary>The away switch as the page shows it.</summary>
internal sealed record SwitchView(bool Configured, ForwardSwitchState State, bool On, TimeZoneInfo Zone);

/// <summary>
/// Everything the status page shows, read in one go from the same sources as the commands: `status` (accounts),
/// `forward status` (the switch), `messages show` (what forwarding did with each message) and `schedule list`.
/// </summary>
internal sealed record StatusSnapshot(
    DateTimeOffset Now,
    IReadOnlyList<StatusCommand.AccountStatus> Accounts,
    SwitchView Switch,
    IReadOnlyDictionary<string, IReadOnlyList<RecentMail>> Mail,
    IReadOnlyList<ScheduleCommands.ScheduleView> Schedules,
    Edge.EdgeFigures? Edge,
    bool EdgeExpected,
    StoreCapacity? Store = null)
{
    /// <param name="runtime">The host's runtime.</param>
    /// <param name="edge">The edge's counters when this host serves POP3 and it listens.</param>
    /// <param name="edgeExpected">Whether this host should serve POP3 (then a missing <paramref name="edge"/> means it could not listen).</param>
    /// <param name="ct">Cancellation.</param>
    public static async Task<StatusSnapshot> ReadAsync(Runtime runtime, Edge.EdgeFigures? edge, bool edgeExpected, CancellationToken ct)
    {
        var options = runtime.Options;
        var accounts = await StatusCommand.CollectAsync(runtime, ct).ConfigureAwait(false);
        var state = await runtime.ForwardControl.GetSwitchAsync(ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var zone = ForwardCommands.Zone(runtime);
        var switchView = new SwitchView(options.Forward.Configured, state, state.IsOnAt(now), zone);

        // The forwarded mailbox when forwarding is configured, else each mailbox an account feeds.
        IEnumerable<string> mailboxes = options.Forward.Configured
            ? [options.Forward.Mailbox!]
            : (await runtime.Accounts.ListAsync(ct).ConfigureAwait(false)).Select(a => a.Mailbox).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
        var mail = new Dictionary<string, IReadOnlyList<RecentMail>>(StringComparer.Ordinal);
        foreach (var mailbox in mailboxes)
        {
            var recent = await runtime.ForwardControl.RecentMessagesAsync(mailbox, options.StatusPage.RecentMessages, ct).ConfigureAwait(false);
            var rows = new List<RecentMail>();
            foreach (var message in recent.Reverse())
            {
                var forwarding = options.Forward.Configured
                    ? await runtime.Forward.ExplainAsync(message, ct).ConfigureAwait(false)
                    : [];
                rows.Add(new RecentMail(message, forwarding));
            }
            mail[mailbox] = rows;
        }
        var schedules = await ScheduleCommands.ListViewsAsync(runtime, ct).ConfigureAwait(false);
        return new StatusSnapshot(now, accounts, switchView, mail, schedules, edge, edgeExpected, runtime.StoreGauge?.Measure());
    }
}
