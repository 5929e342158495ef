namespace CloudSpool.Host.Tests;

/// <summary>Base of tests that load configuration files: each test gets its own temporary folder.</summary>
public abstract class ConfigFileTest : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudspool-config-").FullName;

    /// <summary>Writes <paramref name="json"/> as the test's cloudspool.json and returns its path.</summary>
    protected string Write(string json)
    {
        var path = Path.Combine(_dir, "cloudspool.json");
        File.WriteAllText(path, json);
        return path;
    }

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        GC.SuppressFinalize(this);
    }
}
