using System.CommandLine;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Scheduling;
using CloudSpool.Host.Configuration;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Host.Cli;

/// <summary>
/// `cloudspool schedule export`: the schedules in effect (edits included) as parameters of infra/bicep/main.bicep,
/// so the cloud's Container Apps Jobs are generated from the same definitions the local scheduler runs.
/// </summary>
public static partial class ScheduleExportCommand
{
    /// <summary>Container Apps names are at most 32 characters; the template puts a prefix of up to 8 and '-' in front.</summary>
    public const int MaxJobNameLength = 23;

    /// <summary>One cloud job: <c>cloudspool job run JOB [--account ACCOUNT]</c> on a UTC cron.</summary>
    /// <param name="Name">Resource name suffix (lower-case letters, digits, single '-').</param>
    /// <param name="Job">`pull`, `forward`, `retention` or `health`.</param>
    /// <param name="Account">The account of a pull job; empty for the others.</param>
    /// <param name="Cron">5-field UTC cron; empty in worker mode.</param>
    /// <param name="Schedule">The Quartz schedule it comes from, for people reading the parameters.</param>
    public sealed record CloudJob(string Name, string Job, string Account, string Cron, string Schedule);

    /// <summary>Everything the template needs from the local definitions.</summary>
    public sealed record Export(string Mode, IReadOnlyList<CloudJob> Jobs, IReadOnlyDictionary<string, string> Settings, IReadOnlyList<string> SecretVariables);

    public static Command Create(CommandContext context)
    {
        var format = new Option<string>("--format") { Description = "bicep-params (a .bicepparam file for infra/bicep/main.bicep) or json (an ARM parameters file)", DefaultValueFactory = _ => "bicep-params" };
        format.AcceptOnlyFromAmong("bicep-params", "json");
        var mode = new Option<string>("--mode") { Description = "jobs (one Container Apps Job per job, on a UTC cron) or worker (one long-running `cloudspool worker`)", DefaultValueFactory = _ => "jobs" };
        mode.AcceptOnlyFromAmong("jobs", "worker");
        var output = new Option<FileInfo?>("--out") { Description = "Write to this file (default: standard output)" };
        var template = new Option<FileInfo?>("--template") { Description = "bicep-params: the template the parameters are for (default: main.bicep beside the output)" };
        var command = new Command("export", "The schedules in effect (edits included), converted to UTC 5-field cron, with the settings and secret names the cloud containers need, as deployment parameters for infra/bicep/main.bicep. A schedule that cannot be converted exactly is refused with the reason, and nothing is written.")
        {
            format, mode, output, template,
        };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var edits = await runtime.Schedules.ListAsync(ct).ConfigureAwait(false);
            var schedules = new List<EffectiveSchedule>();
            var problems = new List<string>();
            var secrets = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var account in await runtime.Accounts.ListAsync(ct).ConfigureAwait(false))
            {
                if (!account.Enabled)
                    continue;
                schedules.Add(JobSchedules.Pull(runtime.Options, account, edits));
                AddSecret(runtime.Secrets, JobNames.Pull(account.Name), account.PasswordRef, secrets, problems,
                    $"the password comes from '{account.PasswordRef}', a file the cloud containers do not have; use --password-ref env:{runtime.Secrets.EnvironmentPrefix}NAME for an account that runs in the cloud");
                if (account.TrustedCertificateFile is not null)
                    problems.Add($"{JobNames.Pull(account.Name)}: it trusts the certificate file {account.TrustedCertificateFile}, which the cloud containers do not have");
            }
            if (RetentionWanted(runtime.Options))
                schedules.Add(JobSchedules.Retention(runtime.Options, edits));
            schedules.Add(JobSchedules.Health(runtime.Options, edits));
            if (runtime.Options.Forward.Configured)
            {
                schedules.Add(JobSchedules.Forward(runtime.Options, edits));
                if (runtime.Options.Forward.Smtp.Password is { } relayPassword)
                {
                    AddSecret(runtime.Secrets, "forward", relayPassword, secrets, problems,
                        $"the relay password comes from '{relayPassword}', a file the cloud containers do not have; use env:{runtime.Secrets.EnvironmentPrefix}NAME");
                }
            }

            var cloudMode = parse.GetValue(mode)!;
            var jobs = new List<CloudJob>();
            foreach (var s in schedules)
            {
                var cron = "";
                if (cloudMode == "jobs")
                {
                    var converted = UtcCron.Convert(s.Job, s.Cron, s.TimeZone, DateTimeOffset.UtcNow);
                    if (converted.Refusal is not null)
                        problems.Add(converted.Refusal);
                    cron = converted.Cron ?? "";
                }
                var account = JobNames.PullAccount(s.Job);
                jobs.Add(new CloudJob(ResourceName(s.Job), account is null ? s.Job : "pull", account ?? "", cron,
                    $"{s.Job} \"{s.Cron}\" {s.TimeZone} ({s.Source.ToString().ToLowerInvariant()})"));
            }
            if (problems.Count > 0)
            {
                foreach (var p in problems)
                    await context.Error.WriteLineAsync(p).ConfigureAwait(false);
                await context.Error.WriteLineAsync("nothing was written.").ConfigureAwait(false);
                return ExitCodes.Failed;
            }

            var export = new Export(cloudMode, cloudMode == "jobs" ? jobs : [], Settings(runtime.Options), [.. secrets]);
            var file = parse.GetValue(output);
            var text = parse.GetValue(format) == "json"
                ? ArmParameters(export)
                : BicepParams(export, UsingPath(file, parse.GetValue(template)));
            if (file is null)
            {
                await context.Out.WriteAsync(text).ConfigureAwait(false);
            }
            else
            {
                file.Directory?.Create();
                await File.WriteAllTextAsync(file.FullName, text, ct).ConfigureAwait(false);
            }
            await context.Error.WriteLineAsync(cloudMode == "jobs"
                ? $"{export.Jobs.Count} jobs: {string.Join(", ", export.Jobs.Select(j => $"{j.Name} \"{j.Cron}\" UTC"))}"
                : "worker mode: the worker runs every schedule itself and applies later edits").ConfigureAwait(false);
            if (export.SecretVariables.Count > 0)
            {
                await context.Error.WriteLineAsync(parse.GetValue(format) == "json"
                    ? $"pass the image and these secrets yourself (-p image=... secrets=@FILE, a JSON object of name and value): {string.Join(", ", export.SecretVariables)}"
                    : $"secrets the deployment reads from its environment: {string.Join(", ", export.SecretVariables)}").ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>
    /// The variable a password reference names goes into the deployment's secrets only when the secret rule allows it (the
    /// same check as when it is used), so a stored account can never make the export copy another variable of the
    /// deployer's environment into the cloud; a file reference or a refused one is a problem, naming the job.
    /// </summary>
    private static void AddSecret(SecretPolicy policy, string job, string reference, SortedSet<string> secrets, List<string> problems, string fileProblem)
    {
        if (policy.Check(reference) is { } refused)
            problems.Add($"{job}: {refused}");
        else if (policy.VariableOf(reference) is { } variable)
            secrets.Add(variable);
        else
            problems.Add($"{job}: {fileProblem}");
    }

    /// <summary>The same rule as the scheduler.</summary>
    private static bool RetentionWanted(CloudSpoolOptions options) => options.Retention.Scheduled;

    /// <summary>
    /// A Container Apps resource name suffix for a job: pull:isp becomes pull-isp; names with other characters or
    /// too long are shortened and end in a hash of the job name, so two jobs never share one.
    /// </summary>
    public static string ResourceName(string job)
    {
        var plain = job.Replace(':', '-');
        if (plain.Length <= MaxJobNameLength && ResourceNamePattern().IsMatch(plain))
            return plain;
        var cleaned = Regex.Replace(plain.ToLowerInvariant(), "[^a-z0-9]+", "-").Trim('-');
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(job)))[..6];
        var head = cleaned.Length > MaxJobNameLength - 7 ? cleaned[..(MaxJobNameLength - 7)].TrimEnd('-') : cleaned;
        return $"{head}-{hash}";
    }

    [GeneratedRegex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
    private static partial Regex ResourceNamePattern();

    /// <summary>
    /// Every setting that differs from the default, as CLOUDSPOOL__Section__Key variables for the containers; not the
    /// ones that only mean something on this machine (the connection string or SAS token, the embedded Azurite, the temp folder,
    /// the secrets directory) or
    /// on the LAN (the edge).
    /// </summary>
    public static SortedDictionary<string, string> Settings(CloudSpoolOptions options)
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        AddSettings(options, new CloudSpoolOptions(), "", result);
        return result;
    }

    private static readonly HashSet<string> LocalOnly = ["Storage:ConnectionString", "Storage:SasToken", "Storage:Azurite", "Pull:TempDirectory", "Edge", "Secrets:Directory"];

    private static void AddSettings(object actual, object defaults, string path, SortedDictionary<string, string> result)
    {
        // Only what the configuration binder sets: read-only properties (Retention:Scheduled, Forward:Configured) are
        // derived, not settings.
        foreach (var property in actual.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0))
        {
            var key = path.Length == 0 ? property.Name : $"{path}:{property.Name}";
            if (LocalOnly.Contains(key))
                continue;
            AddValue(key, property.GetValue(actual), property.GetValue(defaults), result);
        }
    }

    private static void AddValue(string key, object? value, object? fallback, SortedDictionary<string, string> result)
    {
        switch (value)
        {
            case null:
                return;
            case string or TimeSpan or bool or Enum or IFormattable:
                if (!Equals(value, fallback))
                    result[Variable(key)] = Text(value);
                return;
            case System.Collections.IDictionary map:
                // Every entry: the binder adds them to the (empty or default) dictionary.
                foreach (System.Collections.DictionaryEntry entry in map)
                    AddValue($"{key}:{entry.Key}", entry.Value, null, result);
                return;
            case System.Collections.IList list:
                // Elements by index (KEY__0__Field), each against a fresh element's defaults.
                for (var i = 0; i < list.Count; i++)
                {
                    var item = list[i];
                    AddValue($"{key}:{i}", item, item is null || item is string || item.GetType().IsValueType ? null : Activator.CreateInstance(item.GetType()), result);
                }
                return;
            default:
                AddSettings(value, fallback ?? Activator.CreateInstance(value.GetType())!, key, result);
                return;
        }
    }

    private static string Text(object value) => value switch
    {
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        IFormattable f and not Enum => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString()!,
    };

    private static string Variable(string key) => ConfigLoader.EnvironmentPrefix + key.Replace(":", "__", StringComparison.Ordinal);

    /// <summary>The template's path as the `using` line of a .bicepparam needs it: relative to the parameters file.</summary>
    private static string UsingPath(FileInfo? output, FileInfo? template)
    {
        if (template is null)
            return "./main.bicep";
        var from = output?.DirectoryName ?? Directory.GetCurrentDirectory();
        var relative = Path.GetRelativePath(from, template.FullName).Replace('\\', '/');
        return relative.StartsWith('.') ? relative : "./" + relative;
    }

    /// <summary>
    /// A .bicepparam file; the image, the registry and the secrets are read from the deployer's environment when the
    /// deployment is built (CLOUDSPOOL_IMAGE, CLOUDSPOOL_REGISTRY_*, and each env:NAME the accounts name), never written down.
    /// </summary>
    public static string BicepParams(Export export, string templatePath)
    {
        var b = new StringBuilder();
        b.AppendLine("// Generated by `cloudspool schedule export`: the schedules in effect (edits included) as UTC cron.");
        b.AppendLine("// After `schedule set|reset` or `account add|remove`, export again and redeploy: cloud jobs do not read edits.");
        b.AppendLine(CultureInfo.InvariantCulture, $"using {Quote(templatePath)}");
        b.AppendLine();
        b.AppendLine(CultureInfo.InvariantCulture, $"param mode = {Quote(export.Mode)}");
        b.AppendLine();
        b.AppendLine("param image = readEnvironmentVariable('CLOUDSPOOL_IMAGE')");
        b.AppendLine("param registryServer = readEnvironmentVariable('CLOUDSPOOL_REGISTRY_SERVER', '')");
        b.AppendLine("param registryUsername = readEnvironmentVariable('CLOUDSPOOL_REGISTRY_USERNAME', '')");
        b.AppendLine("param registryPassword = readEnvironmentVariable('CLOUDSPOOL_REGISTRY_PASSWORD', '')");
        b.AppendLine();
        if (export.Jobs.Count == 0)
        {
            b.AppendLine("param jobs = []");
        }
        else
        {
            b.AppendLine("param jobs = [");
            foreach (var j in export.Jobs)
            {
                b.AppendLine("  {");
                b.AppendLine(CultureInfo.InvariantCulture, $"    name: {Quote(j.Name)}");
                b.AppendLine(CultureInfo.InvariantCulture, $"    job: {Quote(j.Job)}");
                b.AppendLine(CultureInfo.InvariantCulture, $"    account: {Quote(j.Account)}");
                b.AppendLine(CultureInfo.InvariantCulture, $"    cron: {Quote(j.Cron)}");
                b.AppendLine(CultureInfo.InvariantCulture, $"    schedule: {Quote(j.Schedule)}");
                b.AppendLine("  }");
            }
            b.AppendLine("]");
        }
        b.AppendLine();
        AppendObject(b, "settings", export.Settings.Select(s => (s.Key, Quote(s.Value))));
        b.AppendLine();
        AppendObject(b, "secrets", export.SecretVariables.Select(v => (v, $"readEnvironmentVariable({Quote(v)})")));
        return b.ToString();
    }

    private static void AppendObject(StringBuilder b, string name, IEnumerable<(string Key, string Expression)> entries)
    {
        var list = entries.ToList();
        if (list.Count == 0)
        {
            b.AppendLine(CultureInfo.InvariantCulture, $"param {name} = {{}}");
            return;
        }
        b.AppendLine(CultureInfo.InvariantCulture, $"param {name} = {{");
        foreach (var (key, expression) in list)
            b.AppendLine(CultureInfo.InvariantCulture, $"  {(IdentifierPattern().IsMatch(key) ? key : Quote(key))}: {expression}");
        b.AppendLine("}");
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex IdentifierPattern();

    /// <summary>A Bicep string literal.</summary>
    private static string Quote(string value) =>
        "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal)
            .Replace("${", "\\${", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\r", "\\r", StringComparison.Ordinal) + "'";

    /// <summary>An ARM deployment parameters file (for `az deployment group create -p @FILE`); the image and secrets go on the command line.</summary>
    public static string ArmParameters(Export export)
    {
        var web = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var parameters = new JsonObject
        {
            ["mode"] = new JsonObject { ["value"] = export.Mode },
            ["jobs"] = new JsonObject { ["value"] = JsonSerializer.SerializeToNode(export.Jobs, web) },
            ["settings"] = new JsonObject { ["value"] = JsonSerializer.SerializeToNode(export.Settings, web) },
        };
        var root = new JsonObject
        {
            ["$schema"] = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
            ["contentVersion"] = "1.0.0.0",
            ["parameters"] = parameters,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + Environment.NewLine;
    }
}
