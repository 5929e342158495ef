using Microsoft.Extensions.Configuration;

namespace CloudSpool.Host.Configuration;

/// <summary>A configuration that failed to load or validate: every problem, each with its path.</summary>
public sealed class ConfigurationInvalidException(IReadOnlyList<string> problems)
    : Exception("the configuration is invalid:" + Environment.NewLine + string.Join(Environment.NewLine, problems.Select(p => "  " + p)))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}

/// <summary>Loads the configuration file and environment, and refuses anything invalid before start-up.</summary>
public static class ConfigLoader
{
    /// <summary>Environment variable prefix: CLOUDSPOOL__Storage__ConnectionString sets Storage:ConnectionString.</summary>
    public const string EnvironmentPrefix = "CLOUDSPOOL__";

    /// <summary>The default config file: $CLOUDSPOOL_CONFIG, else ~/.config/cloudspool/cloudspool.json when it exists.</summary>
    public static string? DefaultPath()
    {
        var fromEnv = Environment.GetEnvironmentVariable("CLOUDSPOOL_CONFIG");
        if (!string.IsNullOrEmpty(fromEnv))
            return fromEnv;
        var path = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "cloudspool", "cloudspool.json");
        return File.Exists(path) ? path : null;
    }

    /// <summary>Loads and validates; throws <see cref="ConfigurationInvalidException"/> listing every problem.</summary>
    public static CloudSpoolOptions Load(string? path)
    {
        var builder = new ConfigurationBuilder();
        if (path is not null)
        {
            var full = Path.GetFullPath(path);
            if (!File.Exists(full))
                throw new ConfigurationInvalidException([$"config file {full}: does not exist"]);
            builder.AddJsonFile(full, optional: false, reloadOnChange: false);
        }
        builder.AddEnvironmentVariables(EnvironmentPrefix);

        IConfigurationRoot root;
        try
        {
            root = builder.Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or System.Text.Json.JsonException)
        {
            throw new ConfigurationInvalidException([$"config file {path}: not valid JSON: {ex.InnerException?.Message ?? ex.Message}"]);
        }

        var options = new CloudSpoolOptions();
        var problems = new List<string>();
        FindUnknownKeys(root.GetChildren(), typeof(CloudSpoolOptions), problems);
        var (olderValues, readFrom) = LegacyDurationKeys.Translate(root, problems);
        // Set in every provider rather than chained on top: a chained configuration drops empty values, which the
        // validator must see (an empty rule pattern, an empty mailbox name).
        foreach (var (key, value) in olderValues)
            root[key] = value;
        try
        {
            root.Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            // The binder names the path and the expected type, e.g. "Failed to convert configuration value at 'Pull:LeaseDuration' to type 'System.TimeSpan'".
            problems.Add(ex.Message.Replace("Error:", "", StringComparison.Ordinal).Trim());
        }
        if (problems.Count == 0)
        {
            var result = new CloudSpoolOptionsValidator().Validate(options);
            problems.AddRange(result.Errors.Select(e => Problem(e.PropertyName.Replace('.', ':'), e.ErrorMessage, readFrom)));
        }
        if (problems.Count > 0)
            throw new ConfigurationInvalidException(problems);
        return options;
    }

    /// <summary>A problem under the key the user wrote: an older duration key, when the value came from one.</summary>
    private static string Problem(string path, string message, Dictionary<string, string> readFrom) =>
        readFrom.TryGetValue(path, out var older) ? $"{older}: {message} (read as {path})" : $"{path}: {message}";

    /// <summary>A misspelt key would silently do nothing: report each with the keys that exist at its place.</summary>
    private static void FindUnknownKeys(IEnumerable<IConfigurationSection> sections, Type type, List<string> problems)
    {
        var properties = type.GetProperties().ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var section in sections)
        {
            if (type == typeof(CloudSpoolOptions) && section.Key.Equals("Logging", StringComparison.OrdinalIgnoreCase))
                continue; // Microsoft.Extensions.Logging's own section
            if (!properties.TryGetValue(section.Key, out var property))
            {
                if (LegacyDurationKeys.IsOlderKey(section.Path))
                    continue;
                problems.Add($"{section.Path}: unknown setting (expected one of: {string.Join(", ", properties.Keys)})");
                continue;
            }
            var propertyType = property.PropertyType;
            if (propertyType.IsClass && propertyType != typeof(string) && !propertyType.IsGenericType)
                FindUnknownKeys(section.GetChildren(), propertyType, problems);
            else if (propertyType.IsGenericType && propertyType.GetGenericTypeDefinition() == typeof(List<>)
                && propertyType.GetGenericArguments()[0] is { IsClass: true } element && element != typeof(string))
            {
                // A list of objects (e.g. Forward:Rules): a misspelt condition in one element would match everything.
                foreach (var item in section.GetChildren())
                    FindUnknownKeys(item.GetChildren(), element, problems);
            }
        }
    }
}
