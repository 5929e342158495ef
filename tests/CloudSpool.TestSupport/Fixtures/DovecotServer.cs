using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>
/// A real Dovecot (POP3 + IMAP, plain and implicit TLS) started from its own config in a fresh temp folder,
/// listening on free loopback ports. Requires root (Dovecot switches to the mail user and to dovecot/dovenull).
/// </summary>
public sealed class DovecotServer : IAsyncDisposable
{
    private const string DovecotBinary = "/usr/sbin/dovecot";
    private const string MailUserName = "vmail";
    private const string InternalUserName = "dovecot";
    private const string LoginUserName = "dovenull";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private static readonly ConcurrentDictionary<DovecotServer, byte> LiveServers = new();
    private static readonly Lazy<(uint Uid, uint Gid)> MailUser = new(EnsureMailUser, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly Lock _usersLock = new();
    private readonly Lock _consoleLock = new();
    private readonly string _extraConfig;
    private readonly StringBuilder _console = new();
    private Process? _process;
    private long _deliveryCounter;
    private bool _disposed;

    static DovecotServer()
    {
        // Safety net: a test run that never disposes its servers must not leave dovecot processes behind.
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (var server in LiveServers.Keys)
            {
                server.KillProcessTree();
            }
        };
    }

    private DovecotServer(string root, uint mailUid, uint mailGid, string extraConfig)
    {
        Root = root;
        _extraConfig = extraConfig;
        MailUid = mailUid;
        MailGid = mailGid;
    }

    public int Pop3Port { get; private set; }

    public int Pop3sPort { get; private set; }

    public int ImapPort { get; private set; }

    public int ImapsPort { get; private set; }

    public string Host => "127.0.0.1";

    /// <summary>Self-signed certificate (CN 127.0.0.1, SAN IP 127.0.0.1 and DNS localhost) served on all TLS ports.</summary>
    public string CertificatePemPath => Path.Combine(Root, "cert.pem");

    public string Root { get; }

    public string ConfigPath => Path.Combine(Root, "dovecot.conf");

    public string LogPath => Path.Combine(Root, "dovecot.log");

    /// <summary>Parent folder of the users' maildirs (<c>Root/mail/USER</c>).</summary>
    public string MailRoot => Path.Combine(Root, "mail");

    public uint MailUid { get; }

    public uint MailGid { get; }

    public bool IsRunning => _process is { HasExited: false };

    private string KeyPemPath => Path.Combine(Root, "key.pem");

    /// <summary>One passwd-file per user (<c>args = .../passwd.d/%u</c>): a new user's file is read fresh on its first login.</summary>
    private string PasswdDir => Path.Combine(Root, "passwd.d");

    private string BaseDir => Path.Combine(Root, "run");

    public static Task<DovecotServer> StartAsync(CancellationToken ct = default) => StartAsync(extraConfig: string.Empty, ct);

    /// <summary>
    /// Starts Dovecot with <paramref name="extraConfig"/> appended to the generated dovecot.conf
    /// (a setting repeated there overrides the generated one, e.g. <c>pop3_uidl_format = %g</c> or <c>auth_debug = yes</c>).
    /// </summary>
    public static async Task<DovecotServer> StartAsync(string extraConfig, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(extraConfig);
        var (uid, gid) = MailUser.Value;
        var root = Directory.CreateTempSubdirectory("cloudspool-dovecot-").FullName;
        // Mail processes run as the mail user and must traverse Root to reach their maildirs.
        SetUnixFileMode(root, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var server = new DovecotServer(root, uid, gid, extraConfig);
        try
        {
            server.Prepare();
            const int attempts = 3;
            for (var attempt = 1; ; attempt++)
            {
                server.AssignFreePorts();
                server.WriteConfig();
                try
                {
                    await server.StartProcessAsync(ct).ConfigureAwait(false);
                    return server;
                }
                catch (DovecotStartException ex) when (attempt < attempts && ex.Message.Contains("Address already in use", StringComparison.Ordinal))
                {
                    // Another process took one of the probed ports before dovecot bound it: probe again.
                }
            }
        }
        catch
        {
            await server.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Adds a user, or changes its password, and creates its maildir; takes effect for the next login, also while running.
    /// Dovecot lowercases login names (auth_username_format = %Lu), so the entry and maildir use the lowercased name.
    /// Changing an existing user's password while running blocks until the next wall-clock second (see remarks in code).
    /// </summary>
    public void AddUser(string user, string password)
    {
        var name = NormalizeUser(user);
        if (password.Length == 0 || password.IndexOfAny([':', '\r', '\n', '\0']) >= 0)
        {
            throw new ArgumentException("Password must be non-empty and contain no ':', CR, LF or NUL (passwd-file format).", nameof(password));
        }

        lock (_usersLock)
        {
            WritePasswdFile(name, password);
        }

        EnsureMaildir(name, folder: null);
    }

    /// <summary>
    /// Drops <paramref name="raw"/> unchanged into the user's maildir <c>new/</c> (via <c>tmp/</c>, as maildir delivery does).
    /// Dovecot moves the file to <c>cur/</c> (appending <c>:2,FLAGS</c>) on its next sync, so the returned path goes stale then;
    /// use <see cref="ListMessageFiles"/> to find it again. File names sort in delivery order.
    /// </summary>
    public string DeliverRaw(string user, byte[] raw, string? folder = null)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var dir = EnsureMaildir(NormalizeUser(user), NormalizeFolder(folder));
        var now = DateTimeOffset.UtcNow;
        var counter = Interlocked.Increment(ref _deliveryCounter);
        var name = string.Create(CultureInfo.InvariantCulture,
            $"{now.ToUnixTimeSeconds()}.M{now.Ticks / 10 % 1_000_000:D6}P{Environment.ProcessId}Q{counter:D6}.cloudspool");
        var tmpPath = Path.Combine(dir, "tmp", name);
        var newPath = Path.Combine(dir, "new", name);
        File.WriteAllBytes(tmpPath, raw);
        SetUnixFileMode(tmpPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Chown(tmpPath);
        File.Move(tmpPath, newPath);
        return newPath;
    }

    /// <summary>
    /// Puts a message into <c>cur/</c> that Dovecot lists but cannot read: its sizes are in the file name
    /// (<c>,S=</c> and <c>,W=</c>, so login and LIST need not open it) and the file is root-owned with mode 000.
    /// RETR of it gets -ERR while the session stays usable. Undo with <see cref="MakeReadable"/>.
    /// </summary>
    public string DeliverUnreadable(string user, byte[] raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        var dir = EnsureMaildir(NormalizeUser(user), folder: null);
        var counter = Interlocked.Increment(ref _deliveryCounter);
        var now = DateTimeOffset.UtcNow;
        var name = string.Create(CultureInfo.InvariantCulture,
            $"{now.ToUnixTimeSeconds()}.M{now.Ticks / 10 % 1_000_000:D6}P{Environment.ProcessId}Q{counter:D6}.cloudspool,S={raw.Length},W={raw.Length}:2,");
        var path = Path.Combine(dir, "cur", name);
        File.WriteAllBytes(path, raw);
        SetUnixFileMode(path, UnixFileMode.None);
        return path;
    }

    /// <summary>Gives a file made by <see cref="DeliverUnreadable"/> back to the mail user.</summary>
    public void MakeReadable(string path)
    {
        SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Chown(path);
    }

    /// <summary>Message files in <c>new/</c> and <c>cur/</c> of the folder, ordered by file name.</summary>
    public IReadOnlyList<string> ListMessageFiles(string user, string? folder = null)
    {
        var dir = GetMaildirPath(user, folder);
        var files = new List<string>();
        foreach (var sub in new[] { "new", "cur" })
        {
            var path = Path.Combine(dir, sub);
            if (Directory.Exists(path))
            {
                files.AddRange(Directory.GetFiles(path));
            }
        }

        files.Sort((a, b) => string.CompareOrdinal(Path.GetFileName(a), Path.GetFileName(b)));
        return files;
    }

    /// <summary>
    /// Makes Dovecot assign a new UIDVALIDITY (and renumber UIDs from 1) for the folder on its next access,
    /// by deleting the folder's dovecot-uidlist and dovecot.index* files.
    /// Call it while no session has the folder open.
    /// </summary>
    public void ResetUidValidity(string user, string? folder = null)
    {
        var name = NormalizeUser(user);
        var dir = GetMaildirPath(name, folder);
        if (!Directory.Exists(dir))
        {
            throw new DirectoryNotFoundException($"No maildir for user '{name}', folder '{folder ?? "INBOX"}': {dir}");
        }

        // The next UIDVALIDITY comes from the user's dovecot-uidvalidity file (last value + 1), so it always changes;
        // UIDs are reassigned from 1 in file name order (= delivery order for DeliverRaw files).
        foreach (var file in Directory.GetFiles(dir, "dovecot-uidlist*").Concat(Directory.GetFiles(dir, "dovecot.index*")))
        {
            File.Delete(file);
        }
    }

    /// <summary>Path of the user's maildir (folder null or INBOX) or of a maildir++ subfolder (<c>.Name</c>).</summary>
    public string GetMaildirPath(string user, string? folder = null)
    {
        var userDir = Path.Combine(MailRoot, NormalizeUser(user));
        var normalized = NormalizeFolder(folder);
        return normalized is null ? userDir : Path.Combine(userDir, "." + normalized);
    }

    /// <summary>
    /// Certificate validation for MailKit/SslStream clients that trusts only this server's certificate
    /// (assign to <c>ServerCertificateValidationCallback</c>). Host name mismatches are still rejected.
    /// </summary>
    public bool ValidateServerCertificate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors sslPolicyErrors)
    {
        if (certificate is null || (sslPolicyErrors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var trusted = X509Certificate2.CreateFromPem(File.ReadAllText(CertificatePemPath));
        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var customChain = new X509Chain();
        customChain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        customChain.ChainPolicy.CustomTrustStore.Add(trusted);
        customChain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return customChain.Build(leaf);
    }

    /// <summary>Stops Dovecot by killing its process tree and waits until the ports refuse connections. Idempotent.</summary>
    public async Task StopAsync()
    {
        await _lifecycle.WaitAsync().ConfigureAwait(false);
        try
        {
            await StopCoreAsync().ConfigureAwait(false);
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Stops (if running) and starts Dovecot again on the same ports with the same users and mail.</summary>
    public async Task RestartAsync(CancellationToken ct = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        await StopAsync().ConfigureAwait(false);
        await StartProcessAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Dovecot's log file, followed by anything it wrote to stdout/stderr.</summary>
    public string ReadLog()
    {
        var log = string.Empty;
        if (File.Exists(LogPath))
        {
            // Opened with FileShare.ReadWrite because Dovecot's log process keeps appending.
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            log = reader.ReadToEnd();
        }

        string console;
        lock (_consoleLock)
        {
            console = _console.ToString();
        }

        return console.Length == 0 ? log : log + "--- dovecot stdout/stderr ---\n" + console;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        await StopAsync().ConfigureAwait(false);
        LiveServers.TryRemove(this, out _);
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp folder is harmless and must not fail the test that disposes the server.
        }
        catch (UnauthorizedAccessException)
        {
            // Best effort, as above (e.g. a test made a file or folder inaccessible on purpose).
        }
    }

    private static (uint Uid, uint Gid) EnsureMailUser()
    {
        if (!File.Exists(DovecotBinary))
        {
            throw new InvalidOperationException(
                $"{DovecotBinary} not found. Install Dovecot: apt-get install -y dovecot-pop3d dovecot-imapd");
        }

        foreach (var systemUser in new[] { InternalUserName, LoginUserName })
        {
            if (FindUser(systemUser) is null)
            {
                throw new InvalidOperationException(
                    $"System user '{systemUser}' is missing; it is created by the Debian package dovecot-core (apt-get install -y dovecot-pop3d dovecot-imapd).");
            }
        }

        var existing = FindUser(MailUserName);
        if (!Environment.IsPrivilegedProcess)
        {
            var fix = existing is null ? $" and create the mail user: sudo useradd -r -M -s /usr/sbin/nologin {MailUserName}" : string.Empty;
            throw new InvalidOperationException(
                "DovecotServer must run as root: Dovecot switches to the mail user, to dovecot and to dovenull, "
                + $"and maildirs are chowned to the mail user. Run the integration tests as root{fix}.");
        }

        if (existing is not null)
        {
            return existing.Value;
        }

        using var useradd = Process.Start(new ProcessStartInfo("useradd")
        {
            ArgumentList = { "-r", "-M", "-s", "/usr/sbin/nologin", MailUserName },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException("Could not start useradd.");
        var stderr = useradd.StandardError.ReadToEnd();
        useradd.WaitForExit();
        // Exit code 9: the user was created concurrently (another test process); that is fine.
        if (useradd.ExitCode is not (0 or 9))
        {
            throw new InvalidOperationException(
                $"useradd -r -M -s /usr/sbin/nologin {MailUserName} failed with exit code {useradd.ExitCode}: {stderr}");
        }

        return FindUser(MailUserName)
            ?? throw new InvalidOperationException($"User '{MailUserName}' still missing from /etc/passwd after useradd.");
    }

    private static (uint Uid, uint Gid)? FindUser(string name)
    {
        foreach (var line in File.ReadLines("/etc/passwd"))
        {
            var fields = line.Split(':');
            if (fields.Length >= 4 && fields[0] == name)
            {
                return (uint.Parse(fields[2], CultureInfo.InvariantCulture), uint.Parse(fields[3], CultureInfo.InvariantCulture));
            }
        }

        return null;
    }

    private static string NormalizeUser(string user)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(user);
        var name = user.ToLowerInvariant();
        if (name is "." or ".." || name.IndexOfAny([':', '/', '\\', '\r', '\n', '\0', ' ', '\t']) >= 0)
        {
            throw new ArgumentException($"User name '{user}' cannot be used as a passwd-file entry and maildir name.", nameof(user));
        }

        return name;
    }

    private static string? NormalizeFolder(string? folder)
    {
        if (folder is null || folder.Equals("INBOX", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        if (folder.Length == 0 || folder.StartsWith('.') || folder.EndsWith('.') || folder.IndexOfAny(['/', '\\', '\0', '\r', '\n']) >= 0)
        {
            throw new ArgumentException(
                $"Folder '{folder}' must be a maildir++ name without the leading dot ('.' separates hierarchy levels).", nameof(folder));
        }

        return folder;
    }

    private static void SetUnixFileMode(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            throw NotOnWindows();
        }

        File.SetUnixFileMode(path, mode);
    }

    private static void CreateDirectory(string path, UnixFileMode mode)
    {
        if (OperatingSystem.IsWindows())
        {
            throw NotOnWindows();
        }

        Directory.CreateDirectory(path, mode);
    }

    private static PlatformNotSupportedException NotOnWindows() => new("DovecotServer runs Debian's Dovecot and needs Linux.");

    /// <summary>
    /// A free port below the kernel's ephemeral range. Dovecot is restarted on the same ports; while it is down, an
    /// outgoing connection of the test run (to Azurite, to an edge) is given a local port from the ephemeral range, and
    /// one given Dovecot's would fail the restart with "Address already in use".
    /// </summary>
    private static int ProbeFreePort(List<TcpListener> holders)
    {
        var top = EphemeralLow() - 1;
        var bottom = Math.Max(1024, top - 12_000);
        for (var attempt = 0; top - bottom >= 1_000 && attempt < 200; attempt++)
        {
            var listener = new TcpListener(IPAddress.Loopback, Random.Shared.Next(bottom, top + 1));
            try
            {
                listener.Start();
            }
            catch (SocketException)
            {
                continue;
            }
            holders.Add(listener);
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        // No room below the range (an unusual kernel setting): any free port.
        var any = new TcpListener(IPAddress.Loopback, 0);
        any.Start();
        holders.Add(any);
        return ((IPEndPoint)any.LocalEndpoint).Port;
    }

    /// <summary>The lowest port the kernel hands out to outgoing connections (32768 when it cannot be read).</summary>
    public static int EphemeralLow()
    {
        try
        {
            var range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return int.Parse(range[0], CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32768;
        }
    }

    private void Prepare()
    {
        Directory.CreateDirectory(MailRoot);
        Directory.CreateDirectory(Path.Combine(Root, "state"));
        WriteCertificate();
        Directory.CreateDirectory(PasswdDir);
        LiveServers.TryAdd(this, 0);
    }

    private void WriteCertificate() => TestCertificates.WriteSelfSigned(CertificatePemPath, KeyPemPath);

    private void AssignFreePorts()
    {
        var holders = new List<TcpListener>();
        try
        {
            // All four are held open together so they are distinct.
            Pop3Port = ProbeFreePort(holders);
            Pop3sPort = ProbeFreePort(holders);
            ImapPort = ProbeFreePort(holders);
            ImapsPort = ProbeFreePort(holders);
        }
        finally
        {
            foreach (var holder in holders)
            {
                holder.Stop();
            }
        }
    }

    private void WriteConfig()
    {
        var config = string.Create(CultureInfo.InvariantCulture, $$"""
            # Generated by CloudSpool.TestSupport DovecotServer; independent of /etc/dovecot.
            base_dir = {{BaseDir}}
            state_dir = {{Root}}/state
            log_path = {{LogPath}}
            info_log_path = {{LogPath}}
            log_timestamp = "%Y-%m-%d %H:%M:%S "
            protocols = pop3 imap
            listen = 127.0.0.1
            default_internal_user = {{InternalUserName}}
            default_login_user = {{LoginUserName}}
            first_valid_uid = {{MailUid}}
            first_valid_gid = {{MailGid}}
            mail_uid = {{MailUid}}
            mail_gid = {{MailGid}}
            mail_location = maildir:{{MailRoot}}/%u
            mail_fsync = never
            pop3_uidl_format = %08Xu%08Xv
            mail_max_userip_connections = 1000
            ssl = yes
            ssl_cert = <{{CertificatePemPath}}
            ssl_key = <{{KeyPemPath}}
            disable_plaintext_auth = no
            auth_mechanisms = plain login
            auth_verbose = yes
            auth_cache_size = 0
            # Without the default 2 s delay before a failed login is answered, negative tests stay fast.
            auth_failure_delay = 0
            # No per-IP auth penalty (4 s, 8 s, ... before the next login after a failure; login_trusted_networks
            # does not lift it in 2.3.19). Repeated failures on one connection still add 5 s each (hardcoded).
            service anvil {
              unix_listener anvil-auth-penalty {
                mode = 0
              }
            }
            passdb {
              driver = passwd-file
              args = scheme=PLAIN {{PasswdDir}}/%u
            }
            userdb {
              driver = passwd-file
              args = {{PasswdDir}}/%u
            }
            service pop3-login {
              inet_listener pop3 {
                address = 127.0.0.1
                port = {{Pop3Port}}
              }
              inet_listener pop3s {
                address = 127.0.0.1
                port = {{Pop3sPort}}
                ssl = yes
              }
            }
            service imap-login {
              inet_listener imap {
                address = 127.0.0.1
                port = {{ImapPort}}
              }
              inet_listener imaps {
                address = 127.0.0.1
                port = {{ImapsPort}}
                ssl = yes
              }
            }

            """);
        File.WriteAllText(ConfigPath, _extraConfig.Length == 0 ? config : config + _extraConfig + "\n");
    }

    /// <remarks>Caller holds <see cref="_usersLock"/>.</remarks>
    private void WritePasswdFile(string user, string password)
    {
        var path = Path.Combine(PasswdDir, user);
        DateTime? previousStamp = File.Exists(path) ? TruncateToSecond(File.GetLastWriteTimeUtc(path)) : null;
        var tmp = path + ".tmp";
        // user:password:uid:gid:gecos:home:shell:extra; uid/gid come from mail_uid/mail_gid.
        File.WriteAllText(tmp, $"{user}:{{PLAIN}}{password}::::::\n");
        SetUnixFileMode(tmp, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.Move(tmp, path, overwrite: true);
        if (previousStamp is null)
        {
            return;
        }

        // Dovecot re-reads a known passwd-file only if its mtime (whole seconds) or size changed, and stats it at most
        // once per second (db-passwd-file.c, last_sync_time == ioloop_time). So the new mtime must differ, and a login
        // in the same second as an earlier lookup would still see the old password: wait for the next second.
        var now = TruncateToSecond(DateTime.UtcNow);
        File.SetLastWriteTimeUtc(path, now > previousStamp.Value ? now : previousStamp.Value.AddSeconds(1));
        if (IsRunning)
        {
            var untilNextSecond = TimeSpan.FromSeconds(1) - TimeSpan.FromTicks(DateTime.UtcNow.Ticks % TimeSpan.TicksPerSecond);
            Thread.Sleep(untilNextSecond + TimeSpan.FromMilliseconds(20));
        }
    }

    private static DateTime TruncateToSecond(DateTime utc) => new(utc.Ticks - utc.Ticks % TimeSpan.TicksPerSecond, DateTimeKind.Utc);

    private string EnsureMaildir(string user, string? folder)
    {
        var userDir = Path.Combine(MailRoot, user);
        CreateMaildir(userDir);
        if (folder is null)
        {
            return userDir;
        }

        var folderDir = Path.Combine(userDir, "." + folder);
        CreateMaildir(folderDir);
        var marker = Path.Combine(folderDir, "maildirfolder");
        if (!File.Exists(marker))
        {
            File.WriteAllBytes(marker, []);
            Chown(marker);
        }

        return folderDir;
    }

    private void CreateMaildir(string dir)
    {
        foreach (var path in new[] { dir, Path.Combine(dir, "new"), Path.Combine(dir, "cur"), Path.Combine(dir, "tmp") })
        {
            if (!Directory.Exists(path))
            {
                CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                Chown(path);
            }
        }
    }

    private void Chown(string path)
    {
        if (NativeMethods.Chown(path, MailUid, MailGid) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"chown({path}, {MailUid}, {MailGid}) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    private async Task StartProcessAsync(CancellationToken ct)
    {
        await _lifecycle.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (IsRunning)
            {
                return;
            }

            // A killed master leaves its pid file behind; if that pid were reused, dovecot would refuse to start.
            var pidFile = Path.Combine(BaseDir, "master.pid");
            if (File.Exists(pidFile))
            {
                File.Delete(pidFile);
            }

            lock (_consoleLock)
            {
                _console.Clear();
            }

            var process = new Process
            {
                StartInfo = new ProcessStartInfo(DovecotBinary)
                {
                    ArgumentList = { "-F", "-c", ConfigPath },
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                },
            };
            process.OutputDataReceived += (_, e) => AppendConsole(e.Data);
            process.ErrorDataReceived += (_, e) => AppendConsole(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            _process = process;

            try
            {
                await WaitUntilReadyAsync(process, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not DovecotStartException)
            {
                await StopCoreAsync(waitForPortsClosed: false).ConfigureAwait(false);
                throw;
            }
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    private async Task WaitUntilReadyAsync(Process process, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        var ports = new[] { Pop3Port, Pop3sPort, ImapPort, ImapsPort };
        string? lastProblem = null;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (process.HasExited)
            {
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                var exitCode = process.ExitCode;
                await StopCoreAsync(waitForPortsClosed: false).ConfigureAwait(false);
                throw new DovecotStartException(
                    $"Dovecot exited with code {exitCode} during startup (config {ConfigPath}).\n{ReadLog()}");
            }

            if (DateTime.UtcNow > deadline)
            {
                await StopCoreAsync(waitForPortsClosed: false).ConfigureAwait(false);
                throw new DovecotStartException(
                    $"Dovecot did not accept connections on ports {string.Join(", ", ports)} within {StartTimeout.TotalSeconds:0} s "
                    + $"(last problem: {lastProblem ?? "none"}; config {ConfigPath}).\n{ReadLog()}");
            }

            using var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            attemptTimeout.CancelAfter(TimeSpan.FromSeconds(2));
            try
            {
                foreach (var port in ports)
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Loopback, port, attemptTimeout.Token).ConfigureAwait(false);
                }

                // Listeners accept as soon as the master binds them; a greeting proves login processes work too.
                await ReadGreetingAsync(Pop3Port, "+OK", attemptTimeout.Token).ConfigureAwait(false);
                await ReadGreetingAsync(ImapPort, "* OK", attemptTimeout.Token).ConfigureAwait(false);
                return;
            }
            catch (SocketException ex)
            {
                lastProblem = ex.Message;
            }
            catch (IOException ex)
            {
                lastProblem = ex.Message;
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                lastProblem = "no answer within 2 s";
            }

            await Task.Delay(50, ct).ConfigureAwait(false);
        }
    }

    private static async Task ReadGreetingAsync(int port, string expectedPrefix, CancellationToken ct)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, ct).ConfigureAwait(false);
        using var stream = client.GetStream();
        var buffer = new byte[512];
        var received = 0;
        while (received < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(received), ct).ConfigureAwait(false);
            if (n == 0)
            {
                throw new IOException($"Port {port} closed the connection before sending a greeting.");
            }

            received += n;
            if (Array.IndexOf(buffer, (byte)'\n', 0, received) >= 0)
            {
                break;
            }
        }

        var greeting = Encoding.ASCII.GetString(buffer, 0, received);
        if (!greeting.StartsWith(expectedPrefix, StringComparison.Ordinal))
        {
            throw new IOException($"Unexpected greeting on port {port}: {greeting.TrimEnd()}");
        }
    }

    /// <remarks>Caller holds <see cref="_lifecycle"/>.</remarks>
    private async Task StopCoreAsync(bool waitForPortsClosed = true)
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        _process = null;
        KillProcessTree(process);
        using (var timeout = new CancellationTokenSource(StopTimeout))
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }

        process.Dispose();
        if (!waitForPortsClosed)
        {
            return;
        }

        // SIGKILL is delivered asynchronously to the children that hold the listening sockets.
        var deadline = DateTime.UtcNow + StopTimeout;
        foreach (var port in new[] { Pop3Port, Pop3sPort, ImapPort, ImapsPort })
        {
            while (await AcceptsConnectionsAsync(port).ConfigureAwait(false))
            {
                if (DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException($"Port {port} still accepts connections {StopTimeout.TotalSeconds:0} s after killing dovecot.");
                }

                await Task.Delay(20).ConfigureAwait(false);
            }
        }
    }

    private static async Task<bool> AcceptsConnectionsAsync(int port)
    {
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            // A dying listener whose backlog no longer completes handshakes: still there, poll again.
            return true;
        }
    }

    private void KillProcessTree()
    {
        if (_process is { } process)
        {
            KillProcessTree(process);
        }
    }

    private static void KillProcessTree(Process process)
    {
        try
        {
            // SIGSTOPs then SIGKILLs the master and, recursively, its children.
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // The process already exited (or was never started); nothing to kill.
        }
    }

    private void AppendConsole(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_consoleLock)
        {
            _console.Append(line).Append('\n');
        }
    }

    private sealed class DovecotStartException(string message) : InvalidOperationException(message);

    private static class NativeMethods
    {
        [DllImport("libc", EntryPoint = "chown", SetLastError = true)]
        internal static extern int Chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint owner, uint group);
    }
}
