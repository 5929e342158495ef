using System.Globalization;

namespace CloudSpool.Core.Health;

/// <summary>
/// An alert raised for an account's condition, kept until the condition clears. The text is fixed when the alert is
/// raised, so a retried delivery renders the very same message (same Message-ID, same bytes), which the spool's dedup
/// stores once.
/// </summary>
public sealed record AlertRecord
{
    public required string Account { get; init; }
    public required string Condition { get; init; }
    public required string Mailbox { get; init; }
    public required DateTimeOffset RaisedAt { get; init; }
    public required string Text { get; init; }

    /// <summary>The alert message is in the mailbox.</summary>
    public bool Delivered { get; init; }

    /// <summary>When the condition cleared; the recovery message is being delivered.</summary>
    public DateTimeOffset? RecoveredAt { get; init; }
    public string? RecoveryText { get; init; }
}

/// <summary>Alerts raised and not yet cleared, shared by every worker.</summary>
public interface IAlertLedger
{
    Task<IReadOnlyList<AlertRecord>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Adds a new alert; false when one for the same account and condition exists.</summary>
    Task<bool> AddAsync(AlertRecord alert, CancellationToken cancellationToken);

    Task UpdateAsync(AlertRecord alert, CancellationToken cancellationToken);

    Task RemoveAsync(string account, string condition, CancellationToken cancellationToken);
}

/// <summary>Renders alerts as mail for the owner's mailbox, so every client at home sees them.</summary>
public static class AlertMail
{
    /// <summary>Header that marks CloudSpool's own alerts (the forward job sends them to the phone while away).</summary>
    public const string AlertHeader = "X-CloudSpool-Alert";

    public static byte[] Raised(AlertRecord alert) =>
        Render(alert, $"[CloudSpool] {alert.Account}: {Title(alert.Condition)}", alert.RaisedAt, "raised", alert.Text);

    public static byte[] Recovered(AlertRecord alert) =>
        Render(alert, $"[CloudSpool] {alert.Account}: recovered", alert.RecoveredAt ?? alert.RaisedAt, "recovered", alert.RecoveryText ?? "");

    private static string Title(string condition) => condition switch
    {
        HealthEvaluator.FailingCondition => "fetching is FAILING",
        HealthEvaluator.StaleCondition => "not checked for too long",
        HealthEvaluator.QuotaCondition => "upstream mailbox nearly FULL",
        HealthEvaluator.StoreCondition => "embedded store filling up",
        _ => condition,
    };

    private static byte[] Render(AlertRecord alert, string subject, DateTimeOffset date, string kind, string text)
    {
        // Fixed bytes from the record alone: no clock, no random Message-ID, a single text part (no boundary).
        var message = new MimeKit.MimeMessage
        {
            Subject = subject,
            Date = date,
            MessageId = string.Create(CultureInfo.InvariantCulture, $"alert.{alert.RaisedAt.UtcTicks}.{kind}.{Token(alert.Account)}.{Token(alert.Condition)}@cloudspool.invalid"),
            Body = new MimeKit.TextPart("plain") { Text = text.Replace("\r\n", "\n", StringComparison.Ordinal) },
        };
        message.From.Add(new MimeKit.MailboxAddress("CloudSpool", "cloudspool@cloudspool.invalid"));
        message.To.Add(new MimeKit.MailboxAddress(alert.Mailbox, Token(alert.Mailbox) + "@cloudspool.invalid"));
        message.Headers.Add("Auto-Submitted", "auto-generated");
        message.Headers.Add(AlertHeader, $"{kind}; account={Token(alert.Account)}; condition={Token(alert.Condition)}");
        using var output = new MemoryStream();
        var options = MimeKit.FormatOptions.Default.Clone();
        options.NewLineFormat = MimeKit.NewLineFormat.Dos;
        message.WriteTo(options, output);
        return output.ToArray();
    }

    /// <summary>A header-safe form of a name (account and mailbox names are simple already; anything else is dropped).</summary>
    private static string Token(string name) => new(name.Where(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-').ToArray());
}
