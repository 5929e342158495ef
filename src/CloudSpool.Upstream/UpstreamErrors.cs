using System.Net.Sockets;
using CloudSpool.Core.Pull;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Security;

namespace CloudSpool.Upstream;

/// <summary>Turns MailKit and socket exceptions into the plain-words kinds that status and alerts show.</summary>
internal static class UpstreamErrors
{
    public static UpstreamException Classify(Exception ex, string host, int port, string stage) => ex switch
    {
        UpstreamException u => u,
        SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData } s =>
            new(UpstreamErrorKind.Dns, $"cannot resolve {host}: {s.Message}", ex),
        SocketException s => new(UpstreamErrorKind.Connect, $"cannot connect to {host}:{port}: {s.Message}", ex),
        SslHandshakeException => new(UpstreamErrorKind.Tls, $"TLS with {host}:{port} failed (certificate not trusted, or no common protocol): {FirstLine(ex.Message)}", ex),
        System.Security.Authentication.AuthenticationException => new(UpstreamErrorKind.Tls, $"TLS with {host}:{port} failed: {ex.Message}", ex),
        MailKit.Security.AuthenticationException => new(UpstreamErrorKind.Authentication, $"{host} refused the login: {ex.Message}", ex),
        NotSupportedException when stage == "connect" => new(UpstreamErrorKind.Tls, $"{host}:{port} does not offer STARTTLS/STLS, which this account requires: {ex.Message}", ex),
        TimeoutException or OperationCanceledException => new(UpstreamErrorKind.Timeout, $"{host}:{port} did not answer in time during {stage}", ex),
        ImapProtocolException or ProtocolException =>
            new(UpstreamErrorKind.Protocol, $"{host}:{port} broke the protocol during {stage} (connection lost or garbled reply): {ex.Message}", ex),
        ImapCommandException => new(UpstreamErrorKind.Protocol, $"{host} refused a command during {stage}: {ex.Message}", ex),
        IOException => new(UpstreamErrorKind.Connect, $"connection to {host}:{port} lost during {stage}: {ex.Message}", ex),
        _ => new(UpstreamErrorKind.Unknown, $"{stage} with {host}:{port} failed: {ex.GetType().Name}: {ex.Message}", ex),
    };

    private static string FirstLine(string text)
    {
        var i = text.IndexOfAny(['\r', '\n']);
        return i < 0 ? text : text[..i];
    }
}
