using System.Net;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using MailKit;
using MailKit.Security;

namespace CloudSpool.Mail;

/// <summary>Connects to upstream POP3 and IMAP servers with MailKit.</summary>
public sealed class MailKitConnector : IUpstreamConnector
{
    /// <summary>Network timeout of a single command, in milliseconds.</summary>
    public int TimeoutMilliseconds { get; init; } = 60_000;

    public async Task<IUpstreamSession> ConnectAsync(AccountDefinition account, string password, CancellationToken cancellationToken)
    {
        IMailService client = account.Protocol == UpstreamProtocol.Imap
            ? new MailKit.Net.Imap.ImapClient()
            : new MailKit.Net.Pop3.Pop3Client();
        client.Timeout = TimeoutMilliseconds;
        client.ServerCertificateValidationCallback = CertificateTrust.Create(account.TrustedCertificateFile);
        var socketOptions = account.Tls switch
        {
            TlsMode.Implicit => SecureSocketOptions.SslOnConnect,
            TlsMode.StartTls => SecureSocketOptions.StartTls,
            _ => SecureSocketOptions.None, // only when the account says so explicitly
        };

        var stage = "connect";
        try
        {
            await client.ConnectAsync(account.Host, account.EffectivePort, socketOptions, cancellationToken).ConfigureAwait(false);
            stage = "login";
            await AuthenticateAsync(client, account, password, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            client.Dispose();
            throw UpstreamErrors.Classify(ex, account.Host, account.EffectivePort, stage);
        }

        return client switch
        {
            MailKit.Net.Imap.ImapClient imap => new ImapUpstreamSession(imap, account),
            MailKit.Net.Pop3.Pop3Client pop3 => new Pop3UpstreamSession(pop3, account),
            _ => throw new InvalidOperationException("unreachable"),
        };
    }

    private static async Task AuthenticateAsync(IMailService client, AccountDefinition account, string password, CancellationToken ct)
    {
        var credentials = new NetworkCredential(account.Username, password);
        var mechanism = account.AuthMechanism?.ToUpperInvariant();
        switch (mechanism)
        {
            case null:
                // Strongest offered: SASL mechanisms MailKit knows, then (POP3) APOP, then USER/PASS or LOGIN.
                await client.AuthenticateAsync(credentials, ct).ConfigureAwait(false);
                break;
            case "USER" or "APOP" when client is MailKit.Net.Pop3.Pop3Client pop3:
                if (mechanism == "APOP" && (pop3.Capabilities & MailKit.Net.Pop3.Pop3Capabilities.Apop) == 0)
                    throw new MailKit.Security.AuthenticationException("the account requires APOP but the server does not offer it (no timestamp in its greeting)");
                // Without SASL mechanisms MailKit uses APOP when offered, else USER/PASS (RFC 1939 section 7).
                pop3.AuthenticationMechanisms.Clear();
                await pop3.AuthenticateAsync(credentials, ct).ConfigureAwait(false);
                break;
            default:
                var sasl = SaslMechanism.Create(mechanism, credentials)
                           ?? throw new UpstreamException(UpstreamErrorKind.Configuration, $"authentication mechanism {mechanism} is not supported");
                await client.AuthenticateAsync(sasl, ct).ConfigureAwait(false);
                break;
        }
    }
}
