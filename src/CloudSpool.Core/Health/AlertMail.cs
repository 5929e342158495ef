using System.Globalization;

namespace CloudSpool.Core.Health;

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
