namespace CloudSpool.Host.Configuration;

/// <summary>The whole configuration: a JSON file plus CLOUDSPOOL__Section__Key environment variables.</summary>
public sealed class CloudSpoolOptions
{
    public StorageOptions Storage { get; set; } = new();
    public PullOptions Pull { get; set; } = new();
    public SchedulerOptions Scheduler { get; set; } = new();
    public RetentionOptions Retention { get; set; } = new();
    public EdgeOptions Edge { get; set; } = new();

    /// <summary>Forwarding to a phone (issue 4); see <see cref="Core.Forward.ForwardOptions"/>.</summary>
    public Core.Forward.ForwardOptions Forward { get; set; } = new();
}

/// <summary>The POP3 edge (`cloudspool edge`, and inside `cloudspool run`).</summary>
public sealed class EdgeOptions
{
    /// <summary>Whether `cloudspool run` starts the edge (`cloudspool edge` always does).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>IP address to listen on; default loopback only.</summary>
    public string Listen { get; set; } = "127.0.0.1";

    /// <summary>Plain POP3 port (STLS when a certificate is configured); 0 picks a free port (logged).</summary>
    public int Port { get; set; } = 1110;

    /// <summary>Implicit-TLS (POP3S) port, when wanted; needs <see cref="CertificatePath"/>.</summary>
    public int? ImplicitTlsPort { get; set; }

    /// <summary>PEM certificate (chain) for STLS and the implicit-TLS port.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key of the certificate; default: in the certificate file.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Networks (CIDR) whose clients may log in without TLS; null means loopback only (127.0.0.0/8, ::1/128).</summary>
    public List<string>? PlaintextAuthNetworks { get; set; }

    /// <summary>Sessions served at once.</summary>
    public int MaxSessions { get; set; } = 100;
}

public sealed class RetentionOptions
{
    /// <summary>Days a message stays in a mailbox's spool after ingest; 0 keeps it forever.</summary>
    public int DefaultDays { get; set; }

    /// <summary>Per-mailbox retention in days, overriding <see cref="DefaultDays"/> (0 keeps forever).</summary>
    public Dictionary<string, int> Mailboxes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>When the retention job runs (Quartz cron); editable with `schedule set retention`.</summary>
    public string Schedule { get; set; } = "0 30 3 * * ?";

    /// <summary>Time zone of the schedule; default Pull:TimeZone.</summary>
    public string? TimeZone { get; set; }
}

public sealed class StorageOptions
{
    /// <summary>Azure Storage connection string; empty means the embedded Azurite.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>Prefix of every table and container name (lower-case letters and digits), to share one account.</summary>
    public string NamePrefix { get; set; } = "";

    public AzuriteOptions Azurite { get; set; } = new();
}

public sealed class AzuriteOptions
{
    /// <summary>Where the embedded Azurite keeps its data.</summary>
    public string? Location { get; set; }

    /// <summary>The azurite executable; default: azurite/node_modules/.bin/azurite of the source tree, then PATH.</summary>
    public string? Command { get; set; }

    public int BlobPort { get; set; } = 10000;
    public int QueuePort { get; set; } = 10001;
    public int TablePort { get; set; } = 10002;
}

public sealed class PullOptions
{
    /// <summary>Quartz cron expression used by accounts without their own schedule.</summary>
    public string DefaultSchedule { get; set; } = "0 */5 * * * ?";

    /// <summary>Time zone of schedules that name none.</summary>
    public string TimeZone { get; set; } = "UTC";

    public TimeSpan BaseBackoff { get; set; } = TimeSpan.FromMinutes(1);
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Where messages are staged on their way to the spool; default: the system temp folder.</summary>
    public string? TempDirectory { get; set; }

    /// <summary>Messages larger than this many bytes are left upstream and reported.</summary>
    public long MaxMessageBytes { get; set; } = 256L << 20;

    /// <summary>Network timeout of one upstream command.</summary>
    public int TimeoutSeconds { get; set; } = 60;

    /// <summary>Blob lease duration guarding each account's pull (15-60 seconds).</summary>
    public int LeaseSeconds { get; set; } = 30;
}

public sealed class SchedulerOptions
{
    /// <summary>How often a running host re-reads accounts and schedules from storage.</summary>
    public int RefreshSeconds { get; set; } = 10;
}
