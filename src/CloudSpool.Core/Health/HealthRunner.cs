using CloudSpool.Core.Accounts;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Leases;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Retention;
using CloudSpool.Core.Scheduling;
using CloudSpool.Core.Security;
using CloudSpool.Core.Spool;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Core.Health;

/// <summary>What the health job is given for one account.</summary>
/// <param name="Account">The account as configured.</param>
/// <param name="State">What its runs recorded; null when it never ran.</param>
public sealed record HealthInput(AccountDefinition Account, AccountPullState? State);

/// <summary>The outcome of a health run: every account's health, and the run as recorded.</summary>
public sealed record HealthReport(IReadOnlyList<AccountHealth> Accounts, JobRunRecord Run);

/// <summary>
/// The health job: evaluates every account and turns conditions into alerts in the owner's mailbox, once when a
/// condition starts and once when it clears (never every run). One runner at a time across processes (blob lease).
/// </summary>
/// <remarks>
/// Alerts survive crashes without repeating: the alert is recorded (with its text) before its mail is stored, the
/// mail is rendered from the record alone, and the spool stores a message with the same Message-ID and body once.
/// </remarks>
public sealed class HealthRunner(IAlertLedger alerts, ISpool spool, ILeaseManager leases, IJobRunLog runs, TimeProvider clock, ILogger<HealthRunner> logger)
{
    public const string Job = "health";

    /// <summary>The pseudo-account alert mail is stored under.</summary>
    public const string AlertSource = "cloudspool";

    /// <summary>
    /// The mailbox the forward job sends to the phone from (Forward:Mailbox), when forwarding is configured: every alert
    /// goes there too, so it reaches the phone while away whichever mailbox its account feeds (the forward rules always
    /// forward alerts; the away switch decides whether anything is sent). Null: alerts go to the account's mailbox only.
    /// </summary>
    public string? PhoneMailbox { get; init; }

    /// <param name="inputs">Every account with what its runs recorded.</param>
    /// <param name="thresholds">When trouble becomes an alert.</param>
    /// <param name="cancellationToken">Stops the run.</param>
    /// <param name="store">
    /// The embedded store's capacity (null on a storage account): past its warning share one alert goes to the mailbox of
    /// the first account by name (and the phone's).
    /// </param>
    public async Task<HealthReport> RunAsync(IReadOnlyList<HealthInput> inputs, HealthThresholds thresholds, CancellationToken cancellationToken, Spool.StoreCapacity? store = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var started = clock.GetUtcNow();
        var health = inputs.Select(i => HealthEvaluator.Evaluate(i.Account, i.State, started, thresholds)).ToList();
        var storeHealth = HealthEvaluator.EvaluateStore(store, inputs.Select(i => i.Account).OrderBy(a => a.Name, StringComparer.Ordinal).FirstOrDefault()?.Mailbox);
        IReadOnlyList<AccountHealth> subjects = storeHealth is null ? health : [.. health, storeHealth];
        var lease = await leases.TryAcquireAsync(Job, cancellationToken).ConfigureAwait(false);
        if (lease is null)
            return new HealthReport(health, await RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), RunOutcome.Skipped, "another worker is running the health check", null)).ConfigureAwait(false));

        await using (lease.ConfigureAwait(false))
        {
            var raised = new List<string>();
            var cleared = new List<string>();
            try
            {
                var open = (await alerts.ListAsync(cancellationToken).ConfigureAwait(false)).ToDictionary(a => (a.Account, a.Condition));
                foreach (var h in subjects)
                {
                    foreach (var condition in h.Alerts.Order(StringComparer.Ordinal))
                    {
                        if (!open.Remove((h.Account, condition), out var alert))
                        {
                            alert = new AlertRecord { Account = h.Account, Condition = condition, Mailbox = h.Mailbox, RaisedAt = started, Text = AlertText(h, condition) };
                            if (!await alerts.AddAsync(alert, cancellationToken).ConfigureAwait(false))
                                continue; // raised by another worker meanwhile
                        }
                        if (!alert.Delivered)
                        {
                            await DeliverAsync(alert.Mailbox, AlertMail.Raised(alert), $"alert:{alert.Account}:{alert.Condition}:{alert.RaisedAt.UtcTicks}", cancellationToken).ConfigureAwait(false);
                            await alerts.UpdateAsync(alert with { Delivered = true }, cancellationToken).ConfigureAwait(false);
                            raised.Add($"{h.Account} {condition}");
                            CoreLog.AlertRaised(logger, h.Account, condition, h.Reason);
                        }
                    }
                }
                // What is left open no longer holds (or the account is gone): tell the owner it recovered, once.
                var byAccount = subjects.DistinctBy(h => h.Account, StringComparer.Ordinal).ToDictionary(h => h.Account, StringComparer.Ordinal);
                foreach (var alert in open.Values)
                {
                    if (alert.Delivered)
                    {
                        var recovered = alert.RecoveredAt is null
                            ? alert with { RecoveredAt = started, RecoveryText = RecoveryText(alert, byAccount.GetValueOrDefault(alert.Account)) }
                            : alert;
                        if (alert.RecoveredAt is null)
                            await alerts.UpdateAsync(recovered, cancellationToken).ConfigureAwait(false);
                        await DeliverAsync(alert.Mailbox, AlertMail.Recovered(recovered), $"recovered:{alert.Account}:{alert.Condition}:{alert.RaisedAt.UtcTicks}", cancellationToken).ConfigureAwait(false);
                        cleared.Add($"{alert.Account} {alert.Condition}");
                        CoreLog.AlertCleared(logger, alert.Account, alert.Condition);
                    }
                    await alerts.RemoveAsync(alert.Account, alert.Condition, cancellationToken).ConfigureAwait(false);
                }
                var summary = Summary(health, raised, cleared);
                return new HealthReport(health, await RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), RunOutcome.Succeeded, summary, null)).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                CoreLog.HealthCheckFailed(logger, ex.Message);
                return new HealthReport(health, await RecordAsync(new JobRunRecord(Job, started, clock.GetUtcNow(), RunOutcome.Failed, Summary(health, raised, cleared), ex.Message)).ConfigureAwait(false));
            }
        }
    }

    private static string Summary(IReadOnlyList<AccountHealth> health, List<string> raised, List<string> cleared)
    {
        var counts = health.GroupBy(h => h.State).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}");
        var text = health.Count == 0 ? "no accounts" : $"{health.Count} accounts: {string.Join(", ", counts)}";
        if (raised.Count > 0)
            text += "; alerts raised: " + string.Join(", ", raised);
        if (cleared.Count > 0)
            text += "; recovered: " + string.Join(", ", cleared);
        return text;
    }

    /// <summary>How much of the upstream server's words an alert quotes.</summary>
    public const int MaxQuotedChars = 300;

    /// <summary>
    /// An alert's text. The upstream server's error text goes to the owner's mailbox and to the phone whatever the rules
    /// say, so it is quoted apart from CloudSpool's own words, marked as the server's, cut at <see cref="MaxQuotedChars"/>
    /// characters and with every control character escaped: a server (or whoever answers in its place) cannot make the
    /// alert say something in CloudSpool's voice, nor put a terminal sequence or a page of text in it.
    /// </summary>
    internal static string AlertText(AccountHealth h, string condition)
    {
        var reason = h.OwnReason + ServerWords(h.UpstreamError);
        return condition switch
        {
            HealthEvaluator.FailingCondition => $"CloudSpool cannot fetch the mail of account {h.Account} (mailbox {h.Mailbox}).\n\n{reason}\n\nIt keeps retrying with capped backoff; `cloudspool status` shows the details. Another message follows when it works again.",
            HealthEvaluator.StoreCondition => $"CloudSpool's embedded store is filling up.\n\n{reason}\n\n`cloudspool status` shows how full it is. Another message follows when it is below the warning level again.",
            HealthEvaluator.QuotaCondition => $"The upstream mailbox of account {h.Account} (mailbox {h.Mailbox}) is nearly full.\n\n{reason}\n\nOnce it is full its server refuses new mail. Let CloudSpool delete what it has stored (`--leave delete`, or `delete-after=DAYS`), or make room upstream. Another message follows when it is below the warning level again.",
            _ => $"CloudSpool has not checked account {h.Account} (mailbox {h.Mailbox}) successfully for too long.\n\n{reason}\n\nNew mail there is not reaching you. `cloudspool status` shows the details; another message follows when it works again.",
        };
    }

    /// <summary>The last error as a quotation, marked as the server's words; empty when there is none.</summary>
    private static string ServerWords(string? error) => string.IsNullOrEmpty(error)
        ? ""
        : $".\n\nThe last error as reported, quoting the upstream server (the server's words, not CloudSpool's: do not act on "
          + $"instructions or links in it; at most {MaxQuotedChars} characters, control characters shown escaped):\n> {SafeText.Quote(error, MaxQuotedChars)}";

    private static string RecoveryText(AlertRecord alert, AccountHealth? now) => now is null
        ? $"Account {alert.Account} was removed; its alert ({alert.Condition}, raised {alert.RaisedAt:u}) is closed."
        : alert.Condition == HealthEvaluator.StoreCondition
            ? $"The embedded store is below the warning level again ({now.OwnReason}). The alert was raised {alert.RaisedAt:u}."
        : alert.Condition == HealthEvaluator.QuotaCondition
            ? $"The upstream mailbox of account {alert.Account} is below the warning level again ({now.OwnReason}). The alert was raised {alert.RaisedAt:u}."
            : $"Account {alert.Account} works again ({now.OwnReason}). The alert ({alert.Condition}) was raised {alert.RaisedAt:u}.";

    /// <summary>Stores an alert mail in the account's mailbox and in the phone's (when another one).</summary>
    private async Task DeliverAsync(string mailbox, byte[] raw, string sourceKey, CancellationToken cancellationToken)
    {
        var message = IngestedMessage.FromBytes(raw, AlertSource, sourceKey, clock.GetUtcNow());
        foreach (var target in new[] { mailbox, PhoneMailbox }.OfType<string>().Distinct(StringComparer.Ordinal))
        {
            await spool.WriteContentAsync(target, message, new MemoryStream(raw), cancellationToken).ConfigureAwait(false);
            await spool.CommitAsync(target, [message], cancellationToken).ConfigureAwait(false); // Stored, or Duplicate after a crash: both fine
        }
    }

    private Task<JobRunRecord> RecordAsync(JobRunRecord record) => runs.RecordAsync(record);
}
