using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace CloudSpool.Pop3;

/// <summary>Settings of a <see cref="Pop3Server"/>: validated when the server is created, and not to be changed afterwards.</summary>
public sealed class Pop3ServerOptions
{
    /// <summary>
    /// Server certificate (with private key) for STLS (RFC 2595) and implicit-TLS listeners (RFC 8314).
    /// Without one, STLS is neither advertised nor accepted and implicit-TLS endpoints cannot be started.
    /// </summary>
    public X509Certificate2? Certificate { get; set; }

    /// <summary>TLS 1.2 and 1.3: what the server accepts by default, and all it may be set to.</summary>
    public const SslProtocols PinnedTlsProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>
    /// TLS versions allowed (RFC 8996, RFC 9325): TLS 1.2 and 1.3 by default, or one of them; never an older version,
    /// and never left to the operating system's choice.
    /// </summary>
    public SslProtocols TlsProtocols { get; set; } = PinnedTlsProtocols;

    /// <summary>
    /// Networks whose clients may send a password without TLS (USER/PASS, AUTH PLAIN). Every other client must
    /// use STLS or an implicit-TLS port first (RFC 2595 section 2.3 recommends against plaintext passwords).
    /// Default: loopback only.
    /// </summary>
    public IList<IPNetwork> PlaintextAuthNetworks { get; } =
        [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];

    /// <summary>
    /// Delay before answering the first failed login from an address, to slow down password guessing; it doubles
    /// with every further failure from the same address within <see cref="FailedLoginWindow"/>, up to
    /// <see cref="MaxFailedLoginDelay"/>. Default 2 s.
    /// </summary>
    public TimeSpan FailedLoginDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest delay before answering a failed login. Default 30 s.</summary>
    public TimeSpan MaxFailedLoginDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a failed login counts against its address; older ones are forgotten. Default 15 minutes.</summary>
    public TimeSpan FailedLoginWindow { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Failed logins from one address within <see cref="FailedLoginWindow"/> after which that address is refused at
    /// login (-ERR [SYS/TEMP], whatever the credentials) for <see cref="FailedLoginLockout"/>. Logins still being
    /// checked count toward it (further ones wait), so no more than this many are checked per window; a successful
    /// login forgets the failures of its own user name at its address only. Default 10.
    /// </summary>
    public int MaxFailedLogins { get; set; } = 10;

    /// <summary>How long an address that reached <see cref="MaxFailedLogins"/> is refused at login. Default 15 minutes.</summary>
    public TimeSpan FailedLoginLockout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>The clock of login penalties (delays, windows, lockouts). Default: the system clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Bad commands (unknown, not valid in the state, malformed, over-long, failed logins) after which the session is ended. Default 10.</summary>
    public int MaxBadCommands { get; set; } = 10;

    /// <summary>Time a client may stay silent before logging in. Default 60 s.</summary>
    public TimeSpan IdleTimeoutBeforeLogin { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Time from connecting (or from the TLS handshake of an implicit-TLS port) to a successful login, however active
    /// the client is meanwhile (CAPA, failed logins); then the session is ended with -ERR [SYS/TEMP]. Default 3 minutes.
    /// </summary>
    public TimeSpan LoginTimeout { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>
    /// Time a logged-in client may stay silent, or take to accept a chunk of a message. RFC 1939 section 3
    /// requires an autologout timer of at least 10 minutes, the default.
    /// </summary>
    public TimeSpan IdleTimeoutAfterLogin { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Sessions served at once; further connections get -ERR [SYS/TEMP] and are closed. Default 100.</summary>
    public int MaxSessions { get; set; } = 100;

    /// <summary>
    /// Sessions served at once for one client address (IPv6 per /64, as login failures count), loopback included, so
    /// one host cannot hold every slot of <see cref="MaxSessions"/>; further connections from it get -ERR [SYS/TEMP]
    /// and are closed. Default 10.
    /// </summary>
    public int MaxSessionsPerAddress { get; set; } = 10;

    /// <summary>Host name in the APOP timestamp of the greeting (RFC 1939 section 7). Default: the machine name.</summary>
    public string HostName { get; set; } = Environment.MachineName;

    /// <summary>
    /// Days a retrieved message may be kept before the server removes it on its own, announced as CAPA EXPIRE
    /// (RFC 2449 section 6.7); null announces NEVER.
    /// </summary>
    public int? ExpireDays { get; set; }

    /// <summary>Bytes read from a stored message per chunk while sending it. Default 64 KiB.</summary>
    public int TransferChunkSize { get; set; } = 64 * 1024;

    private static readonly Pop3ServerOptionsValidator Validator = new();

    /// <summary>Throws <see cref="ArgumentException"/> listing every broken rule of <see cref="Pop3ServerOptionsValidator"/>.</summary>
    internal void Validate()
    {
        var result = Validator.Validate(this);
        if (!result.IsValid)
            throw new ArgumentException("invalid POP3 server options: " + string.Join("; ", result.Errors.Select(e => e.ErrorMessage)));
    }
}
