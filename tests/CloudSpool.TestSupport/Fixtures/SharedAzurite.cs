using CloudSpool.Host.Azurite;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.TestSupport.Fixtures;

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

    private const string FolderPrefix = "cloudspool-test-azurite-";

    private static async Task<EmbeddedAzurite> StartAsync()
    {
        RemoveStaleFolders();
        _location = Directory.CreateTempSubdirectory(FolderPrefix).FullName;
        var azurite = await EmbeddedAzurite.StartPrivateAsync(_location, NullLogger.Instance, CancellationToken.None).ConfigureAwait(false);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            azurite.DisposeAsync().AsTask().GetAwaiter().GetResult();
            try
            {
                Directory.Delete(_location, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Best effort: a folder left behind is removed by a later run (RemoveStaleFolders).
            }
        };
        return azurite;
    }

    /// <summary>
    /// Data folders of earlier runs whose test host ended before it could delete them (the test platform may end
    /// the process without running exit handlers); none of them is in use after a few hours.
    /// </summary>
    private static void RemoveStaleFolders()
    {
        foreach (var dir in new DirectoryInfo(Path.GetTempPath()).EnumerateDirectories(FolderPrefix + "*"))
        {
            if (dir.LastWriteTimeUtc > DateTime.UtcNow.AddHours(-3))
                continue;
            try
            {
                dir.Delete(recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Best effort: try again on the next run.
            }
        }
    }

    /// <summary>A fresh storage name prefix: lower-case letter then letters/digits.</summary>
    public static string NewPrefix() => "t" + Guid.NewGuid().ToString("N")[..10];
}
