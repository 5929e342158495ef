using System.Text.Json;

namespace CloudSpool.Host.Tests;

/// <summary>
/// The runtime settings the cloudspool executable is built with (its runtimeconfig.json, copied beside this test
/// assembly as into every publish and the container image): the CPU they save is measured in bench/results.md.
/// </summary>
public sealed class RuntimeConfigTests
{
    private static JsonElement ConfigProperties()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "cloudspool.runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties").Clone();
    }

    [Fact]
    public void Idle_thread_pool_workers_sleep_instead_of_spinning() =>
        Assert.Equal(0, ConfigProperties().GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());

    [Fact]
    public void Hot_code_is_compiled_once_without_an_instrumented_tier() =>
        Assert.False(ConfigProperties().GetProperty("System.Runtime.TieredPGO").GetBoolean());
}
