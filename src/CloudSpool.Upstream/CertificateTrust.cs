using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace CloudSpool.Upstream;

/// <summary>
/// Server certificate validation: the system's trust store, plus (optionally) one PEM file of
/// certificates that are trusted as roots for a server with a private certificate. Validation is
/// never switched off; a host-name mismatch is always an error.
/// </summary>
internal static class CertificateTrust
{
    public static RemoteCertificateValidationCallback Create(string? trustedPemFile)
    {
        X509Certificate2Collection? extraRoots = null;
        if (trustedPemFile is not null)
        {
            extraRoots = [];
            extraRoots.ImportFromPemFile(trustedPemFile);
        }

        return (_, certificate, chain, errors) =>
        {
            if (errors == SslPolicyErrors.None)
                return true;
            if (extraRoots is null || certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
                return false;

            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(extraRoots);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
            {
                foreach (var element in chain.ChainElements)
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
            return custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
        };
    }
}
