using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Edge;

/// <summary>
/// The edge's TLS certificate: the configured one (Edge:CertificatePath), or a self-signed one generated on the first
/// start and kept as PEM in the state directory (Edge:StateDirectory), so a LAN client can pin its fingerprint once.
/// </summary>
internal static class EdgeCertificate
{
    /// <summary>File name of the generated certificate (PEM) in the state directory.</summary>
    public const string CertificateFileName = "edge-certificate.pem";

    /// <summary>File name of the generated private key (PEM, PKCS#8, mode 0600) in the state directory.</summary>
    public const string KeyFileName = "edge-key.pem";

    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnly | UnixFileMode.UserExecute;
    private static readonly TimeSpan Validity = TimeSpan.FromDays(3650);

    /// <summary>How the certificate in use was found.</summary>
    public enum Origin
    {
        /// <summary>Edge:CertificatePath.</summary>
        Configured,

        /// <summary>Generated now and stored in the state directory.</summary>
        Generated,

        /// <summary>Generated on an earlier start and read back from the state directory.</summary>
        Stored,
    }

    /// <summary>
    /// The state directory, as for the edge's index and cache: Edge:StateDirectory; else $STATE_DIRECTORY (set by
    /// systemd's StateDirectory=, first entry); else ~/.local/state/cloudspool/edge. The certificate lies at its top:
    /// it belongs to the machine, not to one storage account.
    /// </summary>
    public static string StateDirectory(EdgeOptions edge)
    {
        var root = !string.IsNullOrEmpty(edge.StateDirectory) ? edge.StateDirectory
            : Environment.GetEnvironmentVariable("STATE_DIRECTORY") is { Length: > 0 } systemd ? systemd.Split(':')[0]
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state", "cloudspool", "edge");
        return Path.GetFullPath(root);
    }

    /// <summary>The configured certificate, or the stored one, or a new one generated and stored now.</summary>
    /// <exception cref="CryptographicException">A configured or stored certificate or key cannot be read; the message says which file and what to do.</exception>
    /// <exception cref="IOException">The state directory cannot be created or written.</exception>
    public static (X509Certificate2 Certificate, Origin Origin, string Path) Resolve(EdgeOptions edge)
    {
        if (!string.IsNullOrEmpty(edge.CertificatePath))
        {
            var keyPath = string.IsNullOrEmpty(edge.KeyPath) ? null : edge.KeyPath;
            try
            {
                return (X509Certificate2.CreateFromPemFile(edge.CertificatePath, keyPath), Origin.Configured, edge.CertificatePath);
            }
            catch (CryptographicException ex)
            {
                throw new CryptographicException(
                    $"Edge:CertificatePath '{edge.CertificatePath}'" + (keyPath is null ? "" : $" with Edge:KeyPath '{keyPath}'") +
                    $" cannot be used: {ex.Message} (expected a PEM certificate and its matching PEM private key)", ex);
            }
        }
        var directory = StateDirectory(edge);
        var (certificate, generated) = LoadOrCreate(directory, IPAddress.Parse(edge.Listen));
        return (certificate, generated ? Origin.Generated : Origin.Stored, Path.Combine(directory, CertificateFileName));
    }

    /// <summary>
    /// Reads the certificate stored in <paramref name="directory"/>, or generates and stores one (key file mode 0600,
    /// directory 0700 when created). Returns it and whether it was generated now.
    /// </summary>
    public static (X509Certificate2 Certificate, bool Generated) LoadOrCreate(string directory, IPAddress listen)
    {
        try
        {
            return LoadOrCreateCore(directory, listen);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new IOException(
                $"the edge state directory '{directory}' cannot be used for the TLS certificate ({ex.Message}): make it readable and " +
                "writable by this user, or set Edge:StateDirectory or Edge:CertificatePath", ex);
        }
    }

    private static (X509Certificate2 Certificate, bool Generated) LoadOrCreateCore(string directory, IPAddress listen)
    {
        var certificatePath = Path.Combine(directory, CertificateFileName);
        var keyPath = Path.Combine(directory, KeyFileName);
        if (File.Exists(certificatePath))
        {
            if (!File.Exists(keyPath))
                throw new CryptographicException(
                    $"the stored edge certificate '{certificatePath}' has no key file '{keyPath}': delete the certificate to generate a new one " +
                    "(clients that pinned the old fingerprint must pin the new one), or set Edge:CertificatePath");
            try
            {
                return (X509Certificate2.CreateFromPemFile(certificatePath, keyPath), false);
            }
            catch (CryptographicException ex)
            {
                throw new CryptographicException(
                    $"the stored edge certificate '{certificatePath}' or its key '{keyPath}' cannot be read ({ex.Message}): delete both files " +
                    "to generate a new one (clients that pinned the old fingerprint must pin the new one), or set Edge:CertificatePath", ex);
            }
        }

        // No certificate yet (a key alone is what a start interrupted between the two writes leaves: never used, replaced).
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(directory);
            else
                Directory.CreateDirectory(directory, OwnerOnlyDirectory);
        }
        using var created = Generate(listen);
        WriteAtomically(keyPath, created.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        WriteAtomically(certificatePath, created.ExportCertificatePem());
        return (X509Certificate2.CreateFromPemFile(certificatePath, keyPath), true);
    }

    /// <summary>SHA-256 of the DER certificate as colon-separated hex, as `openssl x509 -fingerprint -sha256` prints it.</summary>
    public static string Fingerprint(X509Certificate2 certificate) =>
        string.Join(':', certificate.GetCertHash(HashAlgorithmName.SHA256).Select(b => b.ToString("X2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>A self-signed ECDSA P-256 server certificate for this machine's name, localhost, loopback and the listen address.</summary>
    private static X509Certificate2 Generate(IPAddress listen)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var host = Environment.MachineName;
        var request = new CertificateRequest(new X500DistinguishedName($"CN={host}, O=CloudSpool edge"), key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        foreach (var dns in new[] { host, "localhost" }.Distinct(StringComparer.OrdinalIgnoreCase))
            names.AddDnsName(dns);
        var addresses = new List<IPAddress> { IPAddress.Loopback, IPAddress.IPv6Loopback };
        if (!listen.Equals(IPAddress.Any) && !listen.Equals(IPAddress.IPv6Any) && !addresses.Contains(listen))
            addresses.Add(listen);
        foreach (var address in addresses)
            names.AddIpAddress(address);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.Add(Validity));
    }

    /// <summary>Writes a new owner-only file next to <paramref name="path"/> and renames it into place.</summary>
    private static void WriteAtomically(string path, string text)
    {
        var temporary = path + ".new";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = OwnerOnly;
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
            writer.Flush();
            stream.Flush(flushToDisk: true);
        }
        // A leftover .new file from an interrupted start may have another mode: set it whatever happened before.
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(temporary, OwnerOnly);
        File.Move(temporary, path, overwrite: true);
    }
}
