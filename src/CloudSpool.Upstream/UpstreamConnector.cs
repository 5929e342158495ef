using System.Net;
using CloudSpool.Core.Accounts;
using CloudSpool.Core.Pull;
using CloudSpool.Upstream.Pop3;
using MailKit.Net.Imap;
using MailKit.Security;

namespace CloudSpool.Upstream;

/// <summary>
/// Connects to upstream mailboxes: POP3 with CloudSpool's own streaming client (<see cref="Pop3StreamingSession"/>,
/// SASL from MailKit), IMAP with MailKit.
/// </summary>
public sealed class UpstreamConnector : IUpstreamConnector
{
    /// <summary>Network timeout of a single command (POP3: of each read or write), in milliseconds.</summary>
    public int TimeoutMilliseconds { get; init; } = 60_000;

    public async Task<IUpstreamSession> ConnectAsync(AccountDefinition account, string password, CancellationToken cancellationToken)
    {
        if (account.Protocol == UpstreamProtocol.Pop3)
            return await Pop3StreamingSession.ConnectAsync(account, password, TimeSpan.FromMilliseconds(TimeoutMilliseconds), cancellationToken).ConfigureAwait(false);

        var client = new ImapClient
        {
            Timeout = TimeoutMilliseconds,
            ServerCertificateValidationCallback = CertificateTrust.Create(account.TrustedCertificateFile),
        };
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

        return new ImapUpstreamSession(client, account);
    }

    private static async Task AuthenticateAsync(ImapClient client, AccountDefinition account, string password, CancellationToken ct)
    {
        var credentials = new NetworkCredential(account.Username, password);
        var mechanism = account.AuthMechanism?.ToUpperInvariant();
        if (mechanism is null)
        {
            // Strongest offered: SASL mechanisms MailKit knows, then LOGIN.
            await client.AuthenticateAsync(credentials, ct).ConfigureAwait(false);
            return;
        }

        var sasl = SaslMechanism.Create(mechanism, credentials)
                   ?? throw new UpstreamException(UpstreamErrorKind.Configuration, $"authentication mechanism {mechanism} is not supported");
        await client.AuthenticateAsync(sasl, ct).ConfigureAwait(false);
    }
}
