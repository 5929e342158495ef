using CloudSpool.Core.Accounts;

namespace CloudSpool.Core.Import;

/// <summary>One account read from an old tool's configuration, mapped to CloudSpool's account settings.</summary>
public sealed record ImportedAccount
{
    public required ImportTool Tool { get; init; }

    /// <summary>The configuration file and the line the account starts on.</summary>
    public required string File { get; init; }

    public required int Line { get; init; }

    /// <summary>The old tool's name for it (fetchmail poll name, mpop account, getmail rc file).</summary>
    public required string Label { get; init; }

    /// <summary>The CloudSpool account name.</summary>
    public required string Name { get; init; }

    /// <summary>The local user the old tool delivered to (fetchmail <c>is NAME here</c>), which names the mailbox.</summary>
    public string? LocalUser { get; init; }

    public UpstreamProtocol Protocol { get; init; } = UpstreamProtocol.Pop3;
    public required string Host { get; init; }

    /// <summary>0: the protocol's default for the TLS mode.</summary>
    public int Port { get; init; }

    public TlsMode Tls { get; init; } = TlsMode.None;
    public string? TrustedCertificateFile { get; init; }
    public required string Username { get; init; }
    public string? AuthMechanism { get; init; }
    public IReadOnlyList<string> Folders { get; init; } = ["INBOX"];
    public LeavePolicy Leave { get; init; } = LeavePolicy.Keep;

    /// <summary>Quartz cron; null: the default schedule.</summary>
    public string? Schedule { get; init; }

    public bool Enabled { get; init; } = true;
    public ImportedPassword Password { get; init; } = ImportedPassword.None;

    /// <summary>Where the old tool's record of fetched mail is; empty when it keeps none this importer can read.</summary>
    public IReadOnlyList<SeenSource> Seen { get; init; } = [];

    /// <summary>Every setting not taken over as it was, with the reason.</summary>
    public IReadOnlyList<ImportNote> Notes { get; init; } = [];

    /// <summary>The port actually used.</summary>
    public int EffectivePort => Port != 0 ? Port : AccountDefinition.DefaultPort(Protocol, Tls);
}
