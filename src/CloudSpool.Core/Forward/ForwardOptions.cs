namespace CloudSpool.Core.Forward;

/// <summary>The <c>Forward</c> section of the configuration: what is forwarded, where to, how and when.</summary>
public sealed class ForwardOptions
{
    /// <summary>The spool mailbox whose new mail is forwarded; forwarding is configured when this and a destination are set.</summary>
    public string? Mailbox { get; set; }

    /// <summary>CloudSpool's own sending address: envelope sender and From address of every copy (the relay must accept it).</summary>
    public string? Sender { get; set; }

    /// <summary>Where copies go (a phone's address), each with its own size limit.</summary>
    public List<ForwardDestination> Destinations { get; set; } = [];

    /// <summary>Ordered rules; the first that matches decides.</summary>
    public List<ForwardRuleDefinition> Rules { get; set; } = [];

    /// <summary>What happens to ordinary (not automatic or bulk) mail no rule matched: forward-trimmed, forward-as-is or skip.</summary>
    public string DefaultAction { get; set; } = "forward-trimmed";

    public SmtpRelayOptions Smtp { get; set; } = new();

    /// <summary>When the forward job runs (Quartz cron); editable with `schedule set forward`.</summary>
    public string Schedule { get; set; } = "0 * * * * ?";

    /// <summary>Time zone of the schedule, of the weekly windows and of `forward on --until`; default Pull:TimeZone.</summary>
    public string? TimeZone { get; set; }

    /// <summary>When set, forwarding (while switched on) only sends inside these weekly windows; mail arriving outside waits.</summary>
    public List<ForwardWindowOptions> Windows { get; set; } = [];

    /// <summary>After a temporary failure (SMTP 4xx, relay unreachable) a copy waits base × 2^(attempts−1), capped, before the next try.</summary>
    public TimeSpan BaseBackoff { get; set; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromHours(1);

    /// <summary>A copy that failed temporarily this many times is given up (recorded as failed).</summary>
    public int MaxAttempts { get; set; } = 20;

    /// <summary>Blob lease that makes one forwarder across all processes and machines (whole seconds, 15-60: what Azure grants).</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>True when the section asks for forwarding at all.</summary>
    public bool Configured => Destinations.Count > 0;
}

/// <summary>One phone (or other) address receiving copies.</summary>
public sealed class ForwardDestination
{
    public string? Address { get; set; }

    /// <summary>Largest copy in bytes (carriers refuse large mail); 100 KB by default.</summary>
    public long MaxBytes { get; set; } = 100 * 1024;

    /// <summary>Attachment MIME types kept while the copy fits (<c>text/calendar</c>, <c>image/*</c>); all others are listed only.</summary>
    public List<string> KeepAttachmentTypes { get; set; } = [];
}

/// <summary>How TLS is used with the relay.</summary>
public enum SmtpSecurity
{
    /// <summary>STARTTLS required (port 587 by default).</summary>
    StartTls,

    /// <summary>TLS from the first byte (RFC 8314, port 465 by default).</summary>
    Implicit,

    /// <summary>No TLS (port 25 by default): only for a relay on the same host or a trusted network.</summary>
    None,
}

/// <summary>The SMTP relay copies are sent through (MailKit).</summary>
public sealed class SmtpRelayOptions
{
    public string? Host { get; set; }

    /// <summary>0 means the default of <see cref="Security"/> (587, 465 or 25).</summary>
    public int Port { get; set; }

    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;

    /// <summary>User name for SMTP AUTH; none means no authentication.</summary>
    public string? User { get; set; }

    /// <summary>The password as a secret reference (<c>env:VARIABLE</c> or <c>file:/path</c>), never the password itself.</summary>
    public string? Password { get; set; }

    /// <summary>A PEM certificate (or private CA) trusted for this relay besides the system's.</summary>
    public string? TrustedCertificateFile { get; set; }

    /// <summary>Network timeout with the relay.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The port actually used.</summary>
    public int EffectivePort => Port != 0 ? Port : Security switch
    {
        SmtpSecurity.Implicit => 465,
        SmtpSecurity.None => 25,
        _ => 587,
    };
}

/// <summary>A weekly window, e.g. <c>{ "Days": "Mon-Fri", "Start": "09:00", "End": "18:00" }</c>.</summary>
public sealed class ForwardWindowOptions
{
    /// <summary>Days: names or ranges separated by commas (<c>Mon-Fri</c>, <c>Sat,Sun</c>).</summary>
    public string Days { get; set; } = "Mon-Sun";

    /// <summary>Start time of day (HH:mm), inclusive.</summary>
    public string Start { get; set; } = "00:00";

    /// <summary>End time of day (HH:mm), exclusive; an end before the start runs past midnight.</summary>
    public string End { get; set; } = "24:00";
}

/// <summary>
/// One rule. Every condition given must match (AND); a rule without any condition is refused (use <c>"From": "*"</c> to
/// match everything). Text conditions take a pattern: <c>re:EXPRESSION</c> is a regular expression (case-insensitive,
/// evaluated with a time limit), a pattern with <c>*</c> or <c>?</c> is a wildcard that must match the whole value
/// (<c>*@example.com</c>), anything else is a case-insensitive substring.
/// </summary>
public sealed class ForwardRuleDefinition
{
    /// <summary>A name shown in decisions and errors.</summary>
    public string? Name { get; set; }

    /// <summary>Sender: matched against each From address, display name and "Name &lt;address&gt;".</summary>
    public string? From { get; set; }

    /// <summary>Any recipient (To, Cc, Delivered-To), matched like <see cref="From"/>.</summary>
    public string? To { get; set; }

    public string? Subject { get; set; }

    /// <summary>Header name to pattern, e.g. <c>{ "List-Id": "*example.org*" }</c>; every one listed must match one of the header's values.</summary>
    public Dictionary<string, string> Headers { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The upstream account the message came from (pattern).</summary>
    public string? Account { get; set; }

    /// <summary>Size of the stored message, at least this many bytes.</summary>
    public long? MinBytes { get; set; }

    /// <summary>Size of the stored message, at most this many bytes.</summary>
    public long? MaxBytes { get; set; }

    public bool? HasAttachments { get; set; }

    /// <summary>Some attachment's MIME type or file name matches (<c>application/pdf</c>, <c>image/*</c>, <c>*.pdf</c>).</summary>
    public string? AttachmentType { get; set; }

    /// <summary>
    /// true: only automatic or bulk mail (Auto-Submitted other than "no", Precedence bulk/list/junk, List-Id); such mail is
    /// forwarded only by a rule that asks for it like this (or names one of those headers). false: only other mail.
    /// </summary>
    public bool? Automatic { get; set; }

    /// <summary>forward-trimmed, forward-as-is or skip.</summary>
    public string? Action { get; set; }
}
