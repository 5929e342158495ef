using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using CloudSpool.Host.Configuration;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.Azurite;

/// <summary>
/// The embedded local store: Azurite (pinned in the repository's azurite/ folder) run as a child
/// process on loopback, with an account key generated on the data folder's first use (kept there, mode
/// 0600). If Azurite already answers on the configured ports (another cloudspool process started it on
/// the same data folder), it is reused and left running, but only when it accepts that key: anything else
/// listening there is refused (<see cref="AzuriteRefusedException"/>), never written to.
/// </summary>
public sealed class EmbeddedAzurite : IAsyncDisposable
{
    /// <summary>
    /// The account name: Azurite's development account, so a data folder written before the key was generated (under
    /// the public development key) keeps its data; Azurite keys its data by account name, and AZURITE_ACCOUNTS
    /// replaces that account's public key with the generated one.
    /// </summary>
    public const string AccountName = "devstoreaccount1";

    /// <summary>The file in the data folder holding the generated account key (base64, mode 0600).</summary>
    public const string KeyFileName = "cloudspool-account-key";

    private readonly Process? _process;
    private readonly ILogger _logger;
    private readonly string _accountKey;

    private EmbeddedAzurite(Process? process, int blobPort, int tablePort, string location, string accountKey, ILogger logger)
    {
        _process = process;
        BlobPort = blobPort;
        TablePort = tablePort;
        Location = location;
        _accountKey = accountKey;
        _logger = logger;
    }

    public int BlobPort { get; }
    public int TablePort { get; }
    public string Location { get; }

    /// <summary>True when this object started the process (and will stop it).</summary>
    public bool Owned => _process is not null;

    /// <summary>The connection string with this data folder's generated key.</summary>
    public string ConnectionString => ConnectionStringFor(BlobPort, TablePort, _accountKey);

    private static string ConnectionStringFor(int blobPort, int tablePort, string accountKey) =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={accountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{AccountName};TableEndpoint=http://127.0.0.1:{tablePort}/{AccountName};";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>
    /// The data folder's account key: read from <see cref="KeyFileName"/>, or generated (64 random bytes) and written
    /// there mode 0600 on the folder's first use. The folder itself is made 0700: Azurite's files hold the whole spool.
    /// </summary>
    public static string LoadOrCreateAccountKey(string location)
    {
        if (OperatingSystem.IsWindows())
            Directory.CreateDirectory(location);
        else
        {
            Directory.CreateDirectory(location, OwnerOnly | UnixFileMode.UserExecute);
            File.SetUnixFileMode(location, OwnerOnly | UnixFileMode.UserExecute);
        }
        var path = Path.Combine(location, KeyFileName);
        if (!File.Exists(path))
        {
            // Written aside and moved in without replacing: two first starts at once agree on one key.
            var temp = path + "." + Guid.NewGuid().ToString("N")[..8];
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = OwnerOnly;
            using (var file = new FileStream(temp, options))
            using (var writer = new StreamWriter(file))
                writer.WriteLine(Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64)));
            try
            {
                File.Move(temp, path, overwrite: false);
            }
            catch (IOException) when (File.Exists(path))
            {
                File.Delete(temp);
            }
        }
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(path) & ~OwnerOnly) != 0)
            File.SetUnixFileMode(path, OwnerOnly);
        var key = File.ReadAllText(path).Trim();
        try
        {
            if (Convert.FromBase64String(key).Length < 32)
                throw new FormatException("too short");
        }
        catch (FormatException ex)
        {
            throw new InvalidOperationException($"{path} does not hold an account key ({ex.Message}); delete it to get a new one", ex);
        }
        return key;
    }

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
        var key = LoadOrCreateAccountKey(location);
        if (await AcceptsAsync(options.BlobPort).ConfigureAwait(false) || await AcceptsAsync(options.TablePort).ConfigureAwait(false))
        {
            var reused = new EmbeddedAzurite(null, options.BlobPort, options.TablePort, location, key, logger);
            var refusal = await reused.RefusalAsync(cancellationToken).ConfigureAwait(false);
            if (refusal is not null)
            {
                throw new AzuriteRefusedException(
                    $"something already listens on 127.0.0.1:{options.BlobPort}/{options.TablePort} (Storage:Azurite:BlobPort/TablePort) and does not " +
                    $"accept the key of {location} ({refusal}); it is not used. It may be another user's process, or an Azurite an older " +
                    "CloudSpool started with the public development key: stop it and start again (the data folder keeps its data), " +
                    "or configure other ports");
            }
            HostLog.AzuriteReused(logger, options.BlobPort, options.TablePort, location);
            return reused;
        }
        return await LaunchAsync(options.Command, location, key, options.BlobPort, options.QueuePort, options.TablePort, logger, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Why the listener on this object's ports cannot be used (an authenticated request on each of blob and table,
    /// with this folder's key, was refused or not answered as Azure Storage answers); null when both accept the key.
    /// </summary>
    private async Task<string?> RefusalAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        var blobOptions = new Azure.Storage.Blobs.BlobClientOptions();
        blobOptions.Retry.MaxRetries = 1;
        blobOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(5);
        var tableOptions = new Azure.Data.Tables.TableClientOptions();
        tableOptions.Retry.MaxRetries = 1;
        tableOptions.Retry.NetworkTimeout = TimeSpan.FromSeconds(5);
        try
        {
            // One page of each listing: a request only the account's key opens.
            await foreach (var _ in new Azure.Storage.Blobs.BlobServiceClient(ConnectionString, blobOptions)
                               .GetBlobContainersAsync(cancellationToken: timeout.Token).AsPages(pageSizeHint: 1).ConfigureAwait(false))
                break;
            await foreach (var _ in new Azure.Data.Tables.TableServiceClient(ConnectionString, tableOptions)
                               .QueryAsync(maxPerPage: 1, cancellationToken: timeout.Token).AsPages().ConfigureAwait(false))
                break;
            return null;
        }
        catch (Azure.RequestFailedException ex)
        {
            return $"{ex.Status} {ex.ErrorCode}".TrimEnd();
        }
        catch (Exception ex) when (ex is System.Net.Http.HttpRequestException or OperationCanceledException or AggregateException or InvalidOperationException or FormatException)
        {
            return ex.Message;
        }
    }

    /// <summary>Starts a private Azurite on free loopback ports in <paramref name="location"/> (tests, benchmarks).</summary>
    public static Task<EmbeddedAzurite> StartPrivateAsync(string location, ILogger logger, CancellationToken cancellationToken) =>
        LaunchAsync(null, location, LoadOrCreateAccountKey(location), FreePort(), FreePort(), FreePort(), logger, cancellationToken);

    private static async Task<EmbeddedAzurite> LaunchAsync(string? command, string location, string accountKey, int blobPort, int queuePort, int tablePort, ILogger logger, CancellationToken cancellationToken)
    {
        var executable = FindCommand(command) ?? throw new InvalidOperationException(
            "Azurite is not installed: run 'npm ci --prefix azurite' in the CloudSpool source tree, set Storage:Azurite:Command, " +
            "or set Storage:ConnectionString to use a storage account");
        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The only account it serves: the development account's name with this folder's key (in the environment,
        // which other users cannot read, unlike a command line). A value Azurite cannot parse would make it fall back
        // to the public key, which the check below would then refuse.
        start.Environment["AZURITE_ACCOUNTS"] = $"{AccountName}:{accountKey}";
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

        var azurite = new EmbeddedAzurite(process, blobPort, tablePort, location, accountKey, logger);
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
        // What answers is the process just started, with this folder's key (not another listener that took a port).
        var refusal = await azurite.RefusalAsync(cancellationToken).ConfigureAwait(false);
        if (refusal is not null)
        {
            await azurite.DisposeAsync().ConfigureAwait(false);
            throw new AzuriteRefusedException($"what answers on 127.0.0.1:{blobPort}/{tablePort} does not accept the key of {location} ({refusal}); it is not used");
        }
        HostLog.AzuriteStarted(logger, blobPort, tablePort, location);
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
                    HostLog.AzuriteKilled(_logger);
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
