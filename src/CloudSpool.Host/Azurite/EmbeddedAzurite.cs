using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CloudSpool.Host.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.Azurite;

/// <summary>
/// The embedded local store: Azurite (pinned in the repository's azurite/ folder) run as a child
/// process on loopback. If Azurite already answers on the configured ports (another cloudspool
/// process started it on the same data folder), it is reused and left running.
/// </summary>
public sealed class EmbeddedAzurite : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account (public, documented by Microsoft).</summary>
    public const string AccountName = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process? _process;
    private readonly ILogger _logger;

    private EmbeddedAzurite(Process? process, int blobPort, int tablePort, string location, ILogger logger)
    {
        _process = process;
        BlobPort = blobPort;
        TablePort = tablePort;
        Location = location;
        _logger = logger;
    }

    public int BlobPort { get; }
    public int TablePort { get; }
    public string Location { get; }

    /// <summary>True when this object started the process (and will stop it).</summary>
    public bool Owned => _process is not null;

    public string ConnectionString => ConnectionStringFor(BlobPort, TablePort);

    public static string ConnectionStringFor(int blobPort, int tablePort) =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{AccountName};TableEndpoint=http://127.0.0.1:{tablePort}/{AccountName};";

    /// <summary>The default data folder: $XDG_DATA_HOME/cloudspool/azurite (~/.local/share/cloudspool/azurite).</summary>
    public static string DefaultLocation() =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "cloudspool", "azurite");

    /// <summary>Finds the azurite executable: the configured one, the source tree's pinned copy, then PATH.</summary>
    public static string? FindCommand(string? configured)
    {
        if (!string.IsNullOrEmpty(configured))
            return configured;
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "azurite", "node_modules", ".bin", "azurite");
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        return path.Split(Path.PathSeparator).Select(p => Path.Combine(p, "azurite")).FirstOrDefault(File.Exists);
    }

    /// <summary>Starts Azurite with the configured ports and data folder, or reuses one already answering there.</summary>
    public static async Task<EmbeddedAzurite> StartAsync(AzuriteOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var location = options.Location ?? DefaultLocation();
        if (await AcceptsAsync(options.BlobPort).ConfigureAwait(false) && await AcceptsAsync(options.TablePort).ConfigureAwait(false))
        {
            logger.LogInformation("using the Azurite already listening on 127.0.0.1:{BlobPort}/{TablePort}", options.BlobPort, options.TablePort);
            return new EmbeddedAzurite(null, options.BlobPort, options.TablePort, location, logger);
        }
        return await LaunchAsync(options.Command, location, options.BlobPort, options.QueuePort, options.TablePort, logger, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts a private Azurite on free loopback ports in <paramref name="location"/> (tests, benchmarks).</summary>
    public static Task<EmbeddedAzurite> StartPrivateAsync(string location, ILogger logger, CancellationToken cancellationToken) =>
        LaunchAsync(null, location, FreePort(), FreePort(), FreePort(), logger, cancellationToken);

    private static async Task<EmbeddedAzurite> LaunchAsync(string? command, string location, int blobPort, int queuePort, int tablePort, ILogger logger, CancellationToken cancellationToken)
    {
        var executable = FindCommand(command) ?? throw new InvalidOperationException(
            "Azurite is not installed: run 'npm ci --prefix azurite' in the CloudSpool source tree, set Storage:Azurite:Command, " +
            "or set Storage:ConnectionString to use a storage account");
        Directory.CreateDirectory(location);
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     "--location", location, "--silent", "--skipApiVersionCheck", "--loose", "--disableProductStyleUrl",
                     // No telemetry: it phones home, and while it is on Azurite does not exit on SIGTERM.
                     "--disableTelemetry",
                     "--blobHost", "127.0.0.1", "--blobPort", blobPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--queueHost", "127.0.0.1", "--queuePort", queuePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--tableHost", "127.0.0.1", "--tablePort", tablePort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                 })
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {executable}");
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var azurite = new EmbeddedAzurite(process, blobPort, tablePort, location, logger);
        var deadline = Stopwatch.StartNew();
        while (!(await AcceptsAsync(blobPort).ConfigureAwait(false) && await AcceptsAsync(tablePort).ConfigureAwait(false)))
        {
            if (process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(60))
            {
                await azurite.DisposeAsync().ConfigureAwait(false);
                string text;
                lock (output) text = output.ToString();
                throw new InvalidOperationException($"Azurite did not start on 127.0.0.1:{blobPort}/{tablePort} (exit code {(process.HasExited ? process.ExitCode : "none")}): {text}");
            }
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
        logger.LogInformation("started Azurite on 127.0.0.1 (blob {BlobPort}, table {TablePort}), data in {Location}", blobPort, tablePort, location);
        return azurite;
    }

    /// <summary>A free loopback TCP port (bound and released; good enough for tests on one machine).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static async Task SendTermAsync(int pid)
    {
        // SIGTERM through kill(1): no unsafe interop for one signal.
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]) { UseShellExecute = false });
        if (kill is not null)
            await kill.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Stops Azurite gracefully (SIGTERM, so its table store is flushed to disk), killing it only if it
    /// does not exit in time. Only a process this object started is stopped.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (_process is null)
            return;
        try
        {
            if (!_process.HasExited)
            {
                if (!OperatingSystem.IsWindows())
                    await SendTermAsync(_process.Id).ConfigureAwait(false);
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                try
                {
                    await _process.WaitForExitAsync(grace.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    _logger.LogWarning("Azurite did not stop within 15 s; killing it");
                    _process.Kill(entireProcessTree: true);
                }
            }
        }
        finally
        {
            _process.Dispose();
        }
    }
}
