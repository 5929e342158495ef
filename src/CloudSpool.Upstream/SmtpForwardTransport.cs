using System.Net;
using CloudSpool.Core.Forward;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace CloudSpool.Upstream;

/// <summary>
/// Sends forwarded copies through the configured relay with MailKit's <see cref="SmtpClient"/>: implicit TLS or STARTTLS
/// (required when configured: a relay that does not offer it is an error, never a silent downgrade) with certificate
/// validation always on, SMTP AUTH when a user is set. One connection per session, opened on the first send.
/// </summary>
public sealed class SmtpForwardTransport(SmtpRelayOptions relay, Func<string?> password) : IForwardTransport
{
    public IForwardSession CreateSession() => new Session(relay, password);

    private sealed class Session(SmtpRelayOptions relay, Func<string?> password) : IForwardSession
    {
        private SmtpClient? _client;

        public async Task<SendResult> SendAsync(MimeMessage message, MailboxAddress sender, MailboxAddress recipient, CancellationToken cancellationToken)
        {
            var endpoint = $"{relay.Host}:{relay.EffectivePort}";
            string stage = "connect";
            try
            {
                if (_client is not { IsConnected: true })
                {
                    _client?.Dispose();
                    _client = new SmtpClient
                    {
                        Timeout = (int)relay.Timeout.TotalMilliseconds,
                        ServerCertificateValidationCallback = CertificateTrust.Create(relay.TrustedCertificateFile),
                    };
                    var security = relay.Security switch
                    {
                        SmtpSecurity.Implicit => SecureSocketOptions.SslOnConnect,
                        SmtpSecurity.None => SecureSocketOptions.None,
                        _ => SecureSocketOptions.StartTls,
                    };
                    await _client.ConnectAsync(relay.Host!, relay.EffectivePort, security, cancellationToken).ConfigureAwait(false);
                    if (!string.IsNullOrEmpty(relay.User))
                    {
                        stage = "login";
                        await _client.AuthenticateAsync(new NetworkCredential(relay.User, password()), cancellationToken).ConfigureAwait(false);
                    }
                }
                stage = "send";
                var reply = await _client.SendAsync(message, sender, [recipient], cancellationToken).ConfigureAwait(false);
                return new SendResult(SendStatus.Sent, $"accepted by {endpoint}: {reply.Trim()}");
            }
            catch (SmtpCommandException ex)
            {
                // RFC 5321 section 4.2.1: 5yz is permanent, 4yz transient; the connection stays usable.
                var code = (int)ex.StatusCode;
                var what = ex.ErrorCode switch
                {
                    SmtpErrorCode.RecipientNotAccepted => $"recipient {ex.Mailbox?.Address} refused",
                    SmtpErrorCode.SenderNotAccepted => $"sender {ex.Mailbox?.Address} refused",
                    _ => "message refused",
                };
                return new SendResult(code >= 500 ? SendStatus.Permanent : SendStatus.Temporary, $"{endpoint}: {what}: {code} {ex.Message.Trim()}");
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Unreachable, TLS, login, timeout or a broken conversation: the relay is unusable for now.
                _client?.Dispose();
                _client = null;
                return new SendResult(SendStatus.Temporary, $"{endpoint}: {stage} failed: {Describe(ex)}", ConnectionFailed: true);
            }
        }

        private static string Describe(Exception ex) => ex switch
        {
            SslHandshakeException => "TLS failed (certificate not trusted, or no common protocol)",
            MailKit.Security.AuthenticationException => $"the relay refused the login: {ex.Message}",
            NotSupportedException => $"the relay does not offer what the configuration requires (STARTTLS or AUTH): {ex.Message}",
            _ => $"{ex.GetType().Name}: {ex.Message}",
        };

        public async ValueTask DisposeAsync()
        {
            if (_client is null)
                return;
            try
            {
                if (_client.IsConnected)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                    await _client.DisconnectAsync(quit: true, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is IOException or SmtpProtocolException or SmtpCommandException or OperationCanceledException or System.Net.Sockets.SocketException)
            {
                // QUIT after the work is done: a relay that drops us here has already answered every message.
            }
            _client.Dispose();
        }
    }
}
