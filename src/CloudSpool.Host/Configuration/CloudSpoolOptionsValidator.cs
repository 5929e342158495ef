using CloudSpool.Core;
using FluentValidation;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Host.Configuration;

/// <summary>Validates the configuration at start-up; each failure names its path (Section:Key) and what was expected.</summary>
public sealed class CloudSpoolOptionsValidator : AbstractValidator<CloudSpoolOptions>
{
    public CloudSpoolOptionsValidator()
    {
        RuleFor(o => o.Storage).NotNull().SetValidator(new StorageValidator());
        RuleFor(o => o.Pull).NotNull().SetValidator(new PullValidator());
        RuleFor(o => o.Retention.DefaultDays).InclusiveBetween(0, 36500)
            .WithMessage("{PropertyValue} is out of range: expected 0 (keep forever) to 36500 days");
        RuleForEach(o => o.Retention.Mailboxes)
            .Must(m => m.Value is >= 0 and <= 36500 && System.Text.RegularExpressions.Regex.IsMatch(m.Key, "^[a-z0-9][a-z0-9._-]{0,62}$"))
            .OverridePropertyName("Retention.Mailboxes")
            .WithMessage((_, m) => $"'{m.Key}': {m.Value} is not valid: expected a mailbox name (lower-case letters, digits, '.', '_', '-') and 0-36500 days");
        RuleFor(o => o.Retention.Schedule).Must(Cron.IsValid)
            .WithMessage("'{PropertyValue}' is not a Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year]), e.g. \"0 30 3 * * ?\"");
        RuleFor(o => o.Retention.TimeZone).Must(tz => TimeZoneInfo.TryFindSystemTimeZoneById(tz!, out _)).When(o => o.Retention.TimeZone is not null)
            .WithMessage("'{PropertyValue}' is not a known time zone (e.g. UTC, Europe/Berlin, Asia/Tokyo)");
        RuleFor(o => o.Edge).NotNull().SetValidator(new EdgeValidator());
        RuleFor(o => o.Health.Schedule).NotEmpty().Must(Cron.IsValid)
            .WithMessage("'{PropertyValue}' is not a Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year]), e.g. \"0 */5 * * * ?\"");
        RuleFor(o => o.Health.TimeZone).Must(tz => TimeZoneInfo.TryFindSystemTimeZoneById(tz!, out _)).When(o => o.Health.TimeZone is not null)
            .WithMessage("'{PropertyValue}' is not a known time zone (e.g. UTC, Europe/Berlin, Asia/Tokyo)");
        RuleFor(o => o.Health.FailingAfter).Between(TimeSpan.FromMinutes(1), TimeSpan.FromDays(7));
        RuleFor(o => o.Telemetry.OtlpEndpoint)
            .Must(e => string.IsNullOrEmpty(e) || Uri.TryCreate(e, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            .WithMessage("'{PropertyValue}' is not an http:// or https:// URL (the OTLP/HTTP receiver's base, e.g. http://127.0.0.1:4318)");
        RuleFor(o => o.Telemetry.ExportInterval).Between(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        RuleFor(o => o.Health.QuotaWarnPercent).InclusiveBetween(1, 100).WithMessage("{PropertyValue} is out of range: expected 1-100 percent");
        RuleFor(o => o.Health.JobOverdueAfter).Between(TimeSpan.FromMinutes(1), TimeSpan.FromDays(7));
        RuleFor(o => o.Health.StaleAfter).Between(TimeSpan.FromHours(1), TimeSpan.FromDays(60));
        RuleFor(o => o.StatusPage).NotNull().SetValidator(new StatusPageValidator());
        RuleFor(o => o.StatusPage.Port).Must((o, port) => port == 0 || port != o.Edge.Port && port != o.Edge.ImplicitTlsPort)
            .WithMessage("{PropertyValue}: the status page port must differ from Edge:Port and Edge:ImplicitTlsPort");
        RuleFor(o => o.Secrets.Directory).Must(d => Path.IsPathFullyQualified(d!) && d!.IndexOfAny(Path.GetInvalidPathChars()) < 0).When(o => o.Secrets.Directory is not null)
            .WithMessage("'{PropertyValue}' is not an absolute directory path: expected e.g. /etc/cloudspool/secrets (or null for ~/.config/cloudspool/secrets)");
        RuleFor(o => o.Secrets.EnvironmentPrefix).Must(Core.Accounts.SecretPolicy.IsValidPrefix)
            .WithMessage("'{PropertyValue}' is not a variable prefix: expected at least 4 upper-case letters, digits and single '_', ending in '_' (e.g. CLOUDSPOOL_SECRET_), and not CLOUDSPOOL_ (CloudSpool's configuration variables are never secrets to send)");
        RuleFor(o => o.Forward).NotNull().SetValidator(o => new Core.Forward.ForwardOptionsValidator(Cron.IsValid, ValidPolicy(o.Secrets)));
        RuleFor(o => o.Scheduler.MisfireThreshold).Between(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        RuleFor(o => o.Scheduler.RefreshInterval).Between(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
    }

    /// <summary>The configured secret rule, or the defaults while the Secrets section itself is invalid (reported apart).</summary>
    private static Core.Accounts.SecretPolicy ValidPolicy(SecretsOptions secrets) =>
        Core.Accounts.SecretPolicy.IsValidPrefix(secrets.EnvironmentPrefix) && (secrets.Directory is null || Path.IsPathFullyQualified(secrets.Directory))
            ? secrets.Policy()
            : Core.Accounts.SecretPolicy.Default;

    private sealed class StorageValidator : AbstractValidator<StorageOptions>
    {
        public StorageValidator()
        {
            RuleFor(s => s.NamePrefix).Matches("^([a-z][a-z0-9]{0,19})?$")
                .WithMessage("'{PropertyValue}' is not a name prefix: expected up to 20 lower-case letters and digits, starting with a letter");
            RuleFor(s => s.ConnectionString)
                .Must(cs => cs!.Contains("AccountName=", StringComparison.OrdinalIgnoreCase) || cs.Contains("UseDevelopmentStorage=true", StringComparison.OrdinalIgnoreCase) || cs.Contains("BlobEndpoint=", StringComparison.OrdinalIgnoreCase))
                .When(s => !string.IsNullOrWhiteSpace(s.ConnectionString))
                .WithMessage("this is not an Azure Storage connection string: expected 'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...' (or leave it empty for the embedded Azurite)");
            RuleFor(s => s.SasToken)
                .Must(t => t!.Contains("sig=", StringComparison.Ordinal) && t.Contains("sv=", StringComparison.Ordinal))
                .When(s => !string.IsNullOrWhiteSpace(s.SasToken))
                .WithMessage("this is not a SAS token: expected 'sv=...&ss=...&sig=...' (what `cloudspool edge-credentials` issues)");
            RuleFor(s => s.SasToken)
                .Must((s, _) => StorageConnection.HasEndpoints(s.ConnectionString) && !StorageConnection.HasCredential(s.ConnectionString))
                .When(s => !string.IsNullOrWhiteSpace(s.SasToken))
                .WithMessage("a SAS token needs Storage:ConnectionString to name the endpoints without a key or another SAS: " +
                             "'BlobEndpoint=https://ACCOUNT.blob.core.windows.net;TableEndpoint=https://ACCOUNT.table.core.windows.net'");
            RuleFor(s => s.ConnectionString)
                .Must((s, cs) => !Storage.Azure.AzureStorage.MissingSasSettings(cs, new Storage.Azure.StorageNames(s.NamePrefix)).Any())
                .When(s => StorageConnection.Parse(s.ConnectionString).Keys.Any(Storage.Azure.AzureStorage.IsServiceSasSetting)
                           && System.Text.RegularExpressions.Regex.IsMatch(s.NamePrefix, "^([a-z][a-z0-9]{0,19})?$"))
                .WithMessage((s, cs) => "this connection string carries a SAS per table and container (what `cloudspool edge-credentials` prints) but lacks " +
                                        string.Join(", ", Storage.Azure.AzureStorage.MissingSasSettings(cs, new Storage.Azure.StorageNames(s.NamePrefix))) +
                                        " for Storage:NamePrefix '" + s.NamePrefix + "': paste the whole line it printed, with the same name prefix");
            RuleFor(s => s.Azurite.BlobPort).InclusiveBetween(1, 65535).WithMessage("{PropertyValue} is not a TCP port: expected 1-65535");
            RuleFor(s => s.Azurite.QueuePort).InclusiveBetween(1, 65535).WithMessage("{PropertyValue} is not a TCP port: expected 1-65535");
            RuleFor(s => s.Azurite.TablePort).InclusiveBetween(1, 65535).WithMessage("{PropertyValue} is not a TCP port: expected 1-65535");
            RuleFor(s => s.Azurite).Must(a => a.BlobPort != a.TablePort && a.BlobPort != a.QueuePort && a.TablePort != a.QueuePort)
                .WithMessage("the Azurite blob, queue and table ports must differ");
            RuleFor(s => s.Azurite.DatabaseLimitBytes).GreaterThan(0).WithMessage("{PropertyValue} is not a size: expected bytes, more than 0");
            RuleFor(s => s.Azurite.RefusePercent).InclusiveBetween(1, 100).WithMessage("{PropertyValue} is not a percentage: expected 1-100");
            RuleFor(s => s.Azurite.WarnPercent).InclusiveBetween(1, 100).WithMessage("{PropertyValue} is not a percentage: expected 1-100");
            RuleFor(s => s.Azurite).Must(a => a.WarnPercent < a.RefusePercent)
                .WithMessage("Storage:Azurite:WarnPercent must be below Storage:Azurite:RefusePercent (it warns before it refuses)");
        }
    }

    private sealed class StatusPageValidator : AbstractValidator<StatusPageOptions>
    {
        public StatusPageValidator()
        {
            RuleFor(p => p.Listen).Must(a => System.Net.IPAddress.TryParse(a, out _))
                .WithMessage("'{PropertyValue}' is not an IP address: expected e.g. 127.0.0.1, 0.0.0.0, ::1 or ::");
            RuleFor(p => p.Port).InclusiveBetween(0, 65535).WithMessage("{PropertyValue} is not a TCP port: expected 1-65535 (0 picks a free one)");
            RuleForEach(p => p.Users).Must(Core.Edge.Pop3Names.IsValidName)
                .WithMessage("'{PropertyValue}' is not a POP3 user name: expected lower-case letters, digits, '.', '_', '-' (a user of `cloudspool user add`)");
            RuleFor(p => p.RefreshInterval).Between(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1)).WholeSeconds();
            RuleFor(p => p.RecentMessages).InclusiveBetween(1, 200).WithMessage("{PropertyValue} is out of range: expected 1-200 messages");
        }
    }

    private sealed class EdgeValidator : AbstractValidator<EdgeOptions>
    {
        public EdgeValidator()
        {
            RuleFor(e => e.Listen).Must(a => System.Net.IPAddress.TryParse(a, out _))
                .WithMessage("'{PropertyValue}' is not an IP address: expected e.g. 127.0.0.1, 0.0.0.0, ::1 or ::");
            RuleFor(e => e.Port).InclusiveBetween(0, 65535).WithMessage("{PropertyValue} is not a TCP port: expected 1-65535 (0 picks a free one)");
            RuleFor(e => e.ImplicitTlsPort).InclusiveBetween(0, 65535).When(e => e.ImplicitTlsPort is not null)
                .WithMessage("{PropertyValue} is not a TCP port: expected 1-65535 (0 picks a free one)");
            RuleFor(e => e.ImplicitTlsPort).Must((e, port) => port != e.Port || port == 0).When(e => e.ImplicitTlsPort is not null)
                .WithMessage("{PropertyValue}: the implicit-TLS port must differ from Edge:Port");
            RuleFor(e => e.CertificatePath).Must(File.Exists).When(e => !string.IsNullOrEmpty(e.CertificatePath))
                .WithMessage("'{PropertyValue}' does not exist: expected a PEM certificate file");
            RuleFor(e => e.KeyPath).Must(File.Exists).When(e => !string.IsNullOrEmpty(e.KeyPath))
                .WithMessage("'{PropertyValue}' does not exist: expected a PEM private key file");
            RuleFor(e => e.KeyPath).Empty().When(e => string.IsNullOrEmpty(e.CertificatePath))
                .WithMessage("a key without Edge:CertificatePath is of no use: set both or neither");
            RuleForEach(e => e.PlaintextAuthNetworks).Must(n => System.Net.IPNetwork.TryParse(n, out _))
                .WithMessage("'{PropertyValue}' is not a network: expected CIDR notation such as 192.168.1.0/24 or fd00::/8");
            RuleFor(e => e.StateDirectory).Must(d => d!.Trim().Length > 0 && d.IndexOfAny(Path.GetInvalidPathChars()) < 0).When(e => e.StateDirectory is not null)
                .WithMessage("'{PropertyValue}' is not a directory path: expected e.g. /var/lib/cloudspool/edge (or null for the default)");
            RuleFor(e => e.MaxSessions).InclusiveBetween(1, 10000).WithMessage("{PropertyValue} is out of range: expected 1-10000 sessions");
            RuleFor(e => e.MaxSessionsPerAddress).InclusiveBetween(1, 10000).WithMessage("{PropertyValue} is out of range: expected 1-10000 sessions");
            RuleFor(e => e.CacheMegabytes).InclusiveBetween(0, 1 << 20).When(e => e.CacheMegabytes is not null)
                .WithMessage("{PropertyValue} is out of range: expected 0-1048576 MiB (0: no cache; null: sized by the disk)");
            RuleFor(e => e.CacheDiskPercent).InclusiveBetween(1, 95).WithMessage("{PropertyValue} is out of range: expected 1-95 percent of the disk");
            RuleFor(e => e.ReadAheadMessages).InclusiveBetween(0, 64).WithMessage("{PropertyValue} is out of range: expected 0-64 messages (0: no read-ahead)");
            RuleFor(e => e.ReadAheadFetches).InclusiveBetween(1, 32).WithMessage("{PropertyValue} is out of range: expected 1-32 fetches at once");
            RuleFor(e => e.CacheReserveMegabytes).InclusiveBetween(0, 1 << 24).WithMessage("{PropertyValue} is out of range: expected 0-16777216 MiB kept free");
            RuleFor(e => e.SyncInterval).Between(TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
            RuleFor(e => e.ReconcileInterval).Between(TimeSpan.FromMinutes(1), TimeSpan.FromDays(7));
            RuleFor(e => e.Lookback).Between(TimeSpan.Zero, TimeSpan.FromDays(1));
            RuleForEach(e => e.SharedDeleteMailboxes).NotEmpty().WithMessage("a mailbox name must not be empty");
        }
    }

    private sealed class PullValidator : AbstractValidator<PullOptions>
    {
        public PullValidator()
        {
            RuleFor(p => p.DefaultSchedule).NotEmpty().Must(Cron.IsValid)
                .WithMessage("'{PropertyValue}' is not a Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year]), e.g. \"0 */5 * * * ?\"");
            RuleFor(p => p.TimeZone).Must(tz => TimeZoneInfo.TryFindSystemTimeZoneById(tz, out _))
                .WithMessage("'{PropertyValue}' is not a known time zone (e.g. UTC, Europe/Berlin, Asia/Tokyo)");
            RuleFor(p => p.BaseBackoff).InclusiveBetween(TimeSpan.FromSeconds(1), TimeSpan.FromDays(1))
                .WithMessage("{PropertyValue} is out of range: expected between 00:00:01 and 1.00:00:00");
            RuleFor(p => p.MaxBackoff).GreaterThanOrEqualTo(p => p.BaseBackoff)
                .WithMessage("{PropertyValue} must be at least BaseBackoff").LessThanOrEqualTo(TimeSpan.FromDays(1))
                .WithMessage("{PropertyValue} is out of range: at most 1.00:00:00, so a failing account is still retried every day");
            RuleFor(p => p.MaxMessageBytes).InclusiveBetween(1024, 4L << 30)
                .WithMessage("{PropertyValue} is out of range: expected 1024 bytes to 4 GiB");
            RuleFor(p => p.Timeout).Between(TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(10));
            RuleFor(p => p.LeaseDuration).Between(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(60), "Azure blob leases last 15-60 seconds").WholeSeconds();
        }
    }
}
