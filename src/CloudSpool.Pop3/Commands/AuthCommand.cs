using System.Text;
using CloudSpool.Pop3.Engine;
using CloudSpool.Pop3.Protocol;

namespace CloudSpool.Pop3.Commands;

/// <summary>
/// AUTH mechanism [initial-response] (RFC 5034) with the PLAIN mechanism (RFC 4616), with or without an initial
/// response. AUTH alone lists the mechanisms, as pre-CAPA clients expect.
/// </summary>
internal sealed class AuthCommand : IPop3Command
{
    public const string Command = "AUTH";
    public const string Plain = "PLAIN";

    private static readonly Encoding StrictUtf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public async ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken)
    {
        if (arguments.Length == 0)
        {
            session.Ok("supported mechanisms follow");
            session.Line(Plain);
            session.EndOfLines();
            return false; // listing logs nobody in: stay in AUTHORIZATION
        }
        var parts = arguments.Split(' ');
        if (parts.Length > 2 || !parts[0].Equals(Plain, StringComparison.OrdinalIgnoreCase))
        {
            session.Reject("unsupported authentication mechanism; supported: " + Plain);
            return false;
        }

        string response;
        if (parts.Length == 2)
        {
            // RFC 5034 section 4: "=" is an empty initial response.
            response = parts[1] == "=" ? string.Empty : parts[1];
        }
        else
        {
            // RFC 5034 section 4: an empty challenge is "+ " followed by CRLF.
            session.Challenge(string.Empty);
            var line = await ReadContinuationAsync(session, cancellationToken).ConfigureAwait(false);
            if (line is null)
                return false;
            if (line == "*")
            {
                // RFC 5034 section 4: the client cancelled; the server MUST reject the AUTH command.
                session.Err("authentication cancelled");
                return false;
            }
            response = line;
        }

        if (!TryDecodePlain(response, out var authzid, out var authcid, out var password))
        {
            session.Reject("malformed PLAIN response");
            return false;
        }
        var credentials = new Pop3Credentials(authcid, password, authzid, Pop3AuthMechanism.Plain, session.ConnectionInfo);
        return await session.LogInAsync(
            authcid, "PLAIN", token => session.Context.Authenticator.AuthenticateAsync(credentials, token), cancellationToken)
            .ConfigureAwait(false);
    }

    private static async ValueTask<string?> ReadContinuationAsync(Pop3Session session, CancellationToken cancellationToken)
    {
        var line = await session.ReadSaslResponseAsync(cancellationToken).ConfigureAwait(false);
        switch (line.Status)
        {
            case Pop3LineStatus.Line:
                return line.Text;
            case Pop3LineStatus.TooLong:
                session.Reject("SASL response too long");
                return null;
            default:
                session.Close();
                return null;
        }
    }

    /// <summary>RFC 4616 section 2: base64 of [authzid] NUL authcid NUL passwd, UTF-8, authcid and passwd not empty.</summary>
    internal static bool TryDecodePlain(string base64, out string authzid, out string authcid, out string password)
    {
        authzid = authcid = password = string.Empty;
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            // RFC 5034 section 4: a response that cannot be base64-decoded fails the AUTH command.
            return false;
        }
        var first = Array.IndexOf(bytes, (byte)0);
        var second = first < 0 ? -1 : Array.IndexOf(bytes, (byte)0, first + 1);
        if (second < 0 || Array.IndexOf(bytes, (byte)0, second + 1) >= 0)
            return false;
        try
        {
            authzid = StrictUtf8.GetString(bytes, 0, first);
            authcid = StrictUtf8.GetString(bytes, first + 1, second - first - 1);
            password = StrictUtf8.GetString(bytes, second + 1, bytes.Length - second - 1);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        finally
        {
            Array.Clear(bytes);
        }
        return authcid.Length > 0 && password.Length > 0;
    }
}
