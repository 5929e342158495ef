using System.Text.Json.Serialization;

namespace CloudSpool.Core.Accounts;

/// <summary>Upstream mail protocol.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<UpstreamProtocol>))]
public enum UpstreamProtocol
{
    Pop3,
    Imap,
}

/// <summary>How the connection to the upstream server is secured.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TlsMode>))]
public enum TlsMode
{
    /// <summary>TLS from the first byte (RFC 8314), ports 995/993 by default.</summary>
    Implicit,

    /// <summary>Plain connection upgraded with STLS/STARTTLS, which must succeed.</summary>
    StartTls,

    /// <summary>No TLS at all. Only when configured explicitly.</summary>
    None,
}

/// <summary>What the first run of an account does with the mail already upstream.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<FirstRunMode>))]
public enum FirstRunMode
{
    /// <summary>Import the existing mailbox.</summary>
    Import,

    /// <summary>Take what is there as already seen and pull only mail that arrives later.</summary>
    SkipExisting,
}

/// <summary>One upstream mailbox that CloudSpool pulls from.</summary>
public sealed record AccountDefinition
{
    /// <summary>Unique account name (lower-case letters, digits, '-', '_' and '.').</summary>
    public required string Name { get; init; }

    public UpstreamProtocol Protocol { get; init; } = UpstreamProtocol.Pop3;
    public required string Host { get; init; }

    /// <summary>TCP port; 0 picks the protocol's default for the TLS mode (995/110, 993/143).</summary>
    public int Port { get; init; }

    public TlsMode Tls { get; init; } = TlsMode.Implicit;

    /// <summary>
    /// A PEM file with a certificate (or CA) to trust for this server in addition to the system's
    /// roots, for a server with a private certificate. Validation stays on.
    /// </summary>
    public string? TrustedCertificateFile { get; init; }

    public required string Username { get; init; }

    /// <summary>Where the password comes from: <c>env:VARIABLE</c> or <c>file:/path</c> (mode 0600). Never the password itself.</summary>
    public required string PasswordRef { get; init; }

    /// <summary>
    /// Authentication to use: null picks the strongest the server offers (SASL, then APOP, then USER/PASS);
    /// otherwise <c>USER</c>, <c>APOP</c> or a SASL mechanism name such as <c>PLAIN</c>.
    /// </summary>
    public string? AuthMechanism { get; init; }

    /// <summary>IMAP folders to pull; ignored for POP3.</summary>
    public IReadOnlyList<string> Folders { get; init; } = ["INBOX"];

    /// <summary>The local mailbox this account feeds; several accounts may feed one mailbox.</summary>
    public required string Mailbox { get; init; }

    public LeavePolicy Leave { get; init; } = LeavePolicy.Keep;
    public FirstRunMode FirstRun { get; init; } = FirstRunMode.Import;

    /// <summary>Quartz cron expression (with seconds field); null uses the configured default.</summary>
    public string? Schedule { get; init; }

    /// <summary>IANA or Windows time zone id for the schedule; null uses the configured default.</summary>
    public string? TimeZone { get; init; }

    public bool Enabled { get; init; } = true;

    /// <summary>
    /// The upstream mailbox's size limit in bytes, for servers that do not tell it (POP3 has no quota command): the
    /// health job warns when the mailbox gets close to it. An IMAP server's own quota (RFC 2087) is used when this is null.
    /// </summary>
    public long? QuotaBytes { get; init; }

    /// <summary>The port actually used.</summary>
    [JsonIgnore]
    public int EffectivePort => Port != 0 ? Port : DefaultPort(Protocol, Tls);

    /// <summary>The protocol's port for the TLS mode: 995/110 for POP3, 993/143 for IMAP.</summary>
    public static int DefaultPort(UpstreamProtocol protocol, TlsMode tls) => (protocol, tls) switch
    {
        (UpstreamProtocol.Pop3, TlsMode.Implicit) => 995,
        (UpstreamProtocol.Pop3, _) => 110,
        (UpstreamProtocol.Imap, TlsMode.Implicit) => 993,
        _ => 143,
    };
}
