using CloudSpool.Host.Azurite;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.IntegrationTests.Fixtures;

/// <summary>
/// One real Azurite process for the whole test run, on free loopback ports with a fresh data folder,
/// started on first use and stopped when the test process exits. Tests isolate themselves with a
/// unique table/container name prefix each.
/// </summary>
public static class SharedAzurite
{
    private static readonly Lazy<Task<EmbeddedAzurite>> Instance = new(StartAsync);
    private static string? _location;

    public static Task<EmbeddedAzurite> GetAsync() => Instance.Value;

    private static async Task<EmbeddedAzurite> StartAsync()
    {
        _location = Directory.CreateTempSubdirectory("cloudspool-test-azurite-").FullName;
        var azurite = await EmbeddedAzurite.StartPrivateAsync(_location, NullLogger.Instance, CancellationToken.None).ConfigureAwait(false);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            azurite.DisposeAsync().AsTask().GetAwaiter().GetResult();
            try
            {
                Directory.Delete(_location, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a temp folder left behind does no harm.
            }
        };
        return azurite;
    }

    /// <summary>A fresh storage name prefix: lower-case letter then letters/digits.</summary>
    public static string NewPrefix() => "t" + Guid.NewGuid().ToString("N")[..10];
}
