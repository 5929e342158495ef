using CloudSpool.Core.Pull;
using MailKit.Security;

namespace CloudSpool.Upstream.Pop3;

/// <summary>Turns the POP3 client's failures into the plain-words kinds that status and alerts show.</summary>
internal static class Pop3Errors
{
    public static UpstreamException Classify(Exception ex, string host, int port, string stage) => ex switch
    {
        UpstreamException u => u,
        UpstreamPop3ProtocolException => new(UpstreamErrorKind.Protocol, $"{host}:{port} broke the protocol during {stage}: {ex.Message}", ex),
        Pop3DestinationException => new(UpstreamErrorKind.Storage, $"{stage} from {host}:{port}: {ex.Message}", ex),
        TimeoutException => new(UpstreamErrorKind.Timeout, $"{host}:{port} did not answer in time during {stage}: {ex.Message}", ex),
        EndOfStreamException => new(UpstreamErrorKind.Connect, $"connection to {host}:{port} lost during {stage}: {ex.Message}", ex),
        SaslException => new(UpstreamErrorKind.Authentication, $"{host} refused the login: {ex.Message}", ex),
        // Sockets (DNS, refused, reset), TLS handshake failures and the rest, classified as for MailKit.
        _ => UpstreamErrors.Classify(ex, host, port, stage),
    };
}
