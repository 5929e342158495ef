using System.Text.Json.Nodes;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Infra.Tests.Support;

/// <summary>
/// Checks CLOUDSPOOL__Section__Key variables an infra file sets against the real configuration: they go through
/// <see cref="ConfigLoader"/> (as a config file with the same keys), whose unknown-key detection and validation report
/// a misspelt key or a wrong value.
/// </summary>
public static class ConfigKeys
{
    /// <summary>The problems ConfigLoader reports for these variables; empty when every one is a real, valid setting.</summary>
    public static IReadOnlyList<string> Problems(IEnumerable<KeyValuePair<string, string>> variables)
    {
        var root = new JsonObject();
        foreach (var (name, value) in variables)
        {
            Assert.StartsWith(ConfigLoader.EnvironmentPrefix, name, StringComparison.Ordinal);
            var path = name[ConfigLoader.EnvironmentPrefix.Length..].Split("__");
            var node = root;
            foreach (var segment in path[..^1])
                node = (JsonObject)(node[segment] ??= new JsonObject());
            node[path[^1]] = value;
        }
        var file = Path.Combine(Path.GetTempPath(), $"cloudspool-infra-config-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, root.ToJsonString());
        try
        {
            ConfigLoader.Load(file);
            return [];
        }
        catch (ConfigurationInvalidException ex)
        {
            return ex.Problems;
        }
        finally
        {
            File.Delete(file);
        }
    }
}
