using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using CloudSpool.Core.Forward;
using MimeKit;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// A real SMTP server process: Debian's aiosmtpd (python3-aiosmtpd, run by /usr/bin/python3) with the
/// <c>smtp_sink.py</c> handler beside this file, which stores what it accepts in a maildir and answers RCPT with codes
/// (and delays) the test sets while it runs. Stoppable and restartable on the same port (relay down, then up). Started
/// with <see cref="StartLmtpAsync"/>, the same handler speaks LMTP instead.
/// </summary>
public sealed class SmtpSinkServer : IAsyncDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly string _root;
    private Process? _process;

    private readonly SmtpSecurity _security;
    private readonly (string User, string Password)? _login;
    private readonly bool _lmtp;

    private SmtpSinkServer(string root, int port, SmtpSecurity security, (string User, string Password)? login, bool lmtp)
    {
        _root = root;
        Port = port;
        _security = security;
        _login = login;
        _lmtp = lmtp;
        if (security != SmtpSecurity.None)
            TestCertificates.WriteSelfSigned(CertificatePemPath, Path.Combine(root, "key.pem"));
    }

    public int Port { get; }

    /// <summary>The server's self-signed certificate (for STARTTLS or implicit TLS), to trust explicitly.</summary>
    public string CertificatePemPath => Path.Combine(_root, "cert.pem");
    public string Maildir => Path.Combine(_root, "maildir");

    /// <param name="security">STARTTLS (required by the server before MAIL) or implicit TLS with a self-signed certificate, or plain.</param>
    /// <param name="login">When set, SMTP AUTH with this user and password is required (plain connection only: the handler's own launcher).</param>
    public static Task<SmtpSinkServer> StartAsync(SmtpSecurity security = SmtpSecurity.None, (string User, string Password)? login = null) =>
        StartAsync(security, login, lmtp: false);

    /// <summary>
    /// An LMTP server (plain, no AUTH) storing what it accepts: a delivery target for a fetch tool that must not fork
    /// (getmail's maildir delivery forks a child per message and can lose its exit, then waits out its timeout).
    /// </summary>
    public static Task<SmtpSinkServer> StartLmtpAsync() => StartAsync(SmtpSecurity.None, login: null, lmtp: true);

    private static async Task<SmtpSinkServer> StartAsync(SmtpSecurity security, (string User, string Password)? login, bool lmtp)
    {
        if (!File.Exists(Python) || !Directory.Exists("/usr/lib/python3/dist-packages/aiosmtpd"))
            throw new InvalidOperationException("aiosmtpd is missing: apt-get install -y python3-aiosmtpd (tests/run installs it)");
        var root = Directory.CreateTempSubdirectory("cloudspool-test-smtp-").FullName;
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var server = new SmtpSinkServer(root, port, security, login, lmtp);
        await server.StartProcessAsync();
        return server;
    }

    /// <summary>Starts (again) on the same port and waits until it answers.</summary>
    public async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var key = Path.Combine(_root, "key.pem");
        string[] tls = _security switch
        {
            SmtpSecurity.StartTls => ["--tlscert", CertificatePemPath, "--tlskey", key],
            SmtpSecurity.Implicit => ["--smtpscert", CertificatePemPath, "--smtpskey", key],
            _ => [],
        };
        var fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures");
        var port = Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string[] args = _lmtp
            ? [Path.Combine(fixtures, "smtp_sink.py"), "--lmtp", port, _root]
            : _login is { } login
            ? [Path.Combine(fixtures, "smtp_sink.py"), port, _root, login.User, login.Password]
            : ["-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{Port}", .. tls, "-c", "smtp_sink.Sink", _root];
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["PYTHONPATH"] = fixtures;
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                if (_security == SmtpSecurity.Implicit)
                    return; // the greeting comes after the TLS handshake
                using var reader = new StreamReader(client.GetStream());
                var greeting = await reader.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(5));
                if (greeting?.StartsWith("220", StringComparison.Ordinal) == true)
                    return;
            }
            catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
            {
                // not listening yet
            }
            if (_process.HasExited || DateTime.UtcNow > deadline)
                throw new InvalidOperationException($"aiosmtpd did not start on port {Port}");
            await Task.Delay(100);
        }
    }

    /// <summary>Stops the server (kill): the relay is down.</summary>
    public async Task StopProcessAsync()
    {
        if (_process is null)
            return;
        if (!_process.HasExited)
            _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    /// <summary>
    /// Per-recipient RCPT replies (e.g. "550 5.1.1 no such mailbox"), a delay before every RCPT reply, and a delay
    /// between storing a message and its 250 reply to the end of DATA.
    /// </summary>
    /// <remarks>
    /// The file is written aside and renamed over the old one: the server reads it at every RCPT, and a half-written
    /// file made it answer a 500 (a permanent refusal the forwarder rightly never retries).
    /// </remarks>
    public void SetBehaviour(IReadOnlyDictionary<string, string>? codes = null, double rcptDelaySeconds = 0, double dataDelaySeconds = 0)
    {
        var path = Path.Combine(_root, "behaviour.json");
        File.WriteAllText(path + ".new", JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["codes"] = codes ?? new Dictionary<string, string>(),
            ["rcpt_delay"] = rcptDelaySeconds,
            ["data_delay"] = dataDelaySeconds,
        }));
        File.Move(path + ".new", path, overwrite: true);
    }

    /// <summary>Every message received so far, parsed.</summary>
    public IReadOnlyList<(MimeMessage Message, long Size)> Received()
    {
        var files = new[] { "new", "cur" }.Select(d => Path.Combine(Maildir, d)).Where(Directory.Exists)
            .SelectMany(Directory.GetFiles).Order(StringComparer.Ordinal).ToList();
        return [.. files.Select(f => (MimeMessage.Load(f), new FileInfo(f).Length))];
    }

    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
