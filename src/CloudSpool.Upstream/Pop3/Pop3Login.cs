using System.Net;
using CloudSpool.Core.Pull;
using MailKit.Security;

namespace CloudSpool.Upstream.Pop3;

/// <summary>
/// Chooses and runs the POP3 login: SASL (RFC 5034, mechanisms from MailKit), APOP or USER/PASS (RFC 1939 section 7).
/// With no mechanism configured, the strongest the server offers is used, falling back to the next one only when
/// the server's refusal carries no response code: a coded refusal ([AUTH] for wrong credentials, RFC 3206; [IN-USE],
/// [LOGIN-DELAY], RFC 2449; [SYS/...]) is final, so a wrong password costs one attempt, not one per mechanism.
/// </summary>
internal static class Pop3Login
{
    /// <summary>SASL mechanisms tried when the account names none, strongest first.</summary>
    public static readonly IReadOnlyList<string> SaslPreference = ["SCRAM-SHA-256", "SCRAM-SHA-1", "CRAM-MD5", "PLAIN", "LOGIN"];

    /// <summary>
    /// Logs in, then reads the capabilities again (they may change after login, RFC 2449 section 5). The mechanism is
    /// null (strongest offered), "USER" (USER/PASS), "APOP", or the name of a SASL mechanism.
    /// </summary>
    public static async Task LoginAsync(UpstreamPop3Engine engine, string user, string password, string? mechanism, CancellationToken cancellationToken)
    {
        var credentials = new NetworkCredential(user, password);
        var requested = mechanism?.ToUpperInvariant();
        switch (requested)
        {
            case null:
                await LoginStrongestAsync(engine, credentials, cancellationToken).ConfigureAwait(false);
                break;
            case "USER":
                EnsureSendable(engine, credentials);
                Require(engine, "USER/PASS", await UserPassAsync(engine, credentials, cancellationToken).ConfigureAwait(false));
                break;
            case "APOP":
                if (engine.ApopTimestamp is null)
                    throw new UpstreamException(UpstreamErrorKind.Authentication,
                        $"the account requires APOP but {engine.Host} does not offer it (no timestamp in its greeting)");
                EnsureSendable(engine, credentials);
                Require(engine, "APOP", await engine.ApopAsync(user, password, cancellationToken).ConfigureAwait(false));
                break;
            default:
                var sasl = Create(requested, credentials)
                           ?? throw new UpstreamException(UpstreamErrorKind.Configuration, $"authentication mechanism {requested} is not supported by the POP3 client");
                Require(engine, requested, await engine.AuthenticateAsync(sasl, cancellationToken).ConfigureAwait(false));
                break;
        }

        await engine.QueryCapabilitiesAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task LoginStrongestAsync(UpstreamPop3Engine engine, NetworkCredential credentials, CancellationToken cancellationToken)
    {
        Pop3Reply reply;
        foreach (var name in SaslPreference)
        {
            if (!engine.Capabilities.SaslMechanisms.Contains(name) || Create(name, credentials) is not { } sasl)
                continue;
            reply = await engine.AuthenticateAsync(sasl, cancellationToken).ConfigureAwait(false);
            if (reply.IsOk)
                return;
            if (reply.ResponseCode is not null)
                throw Refused(engine, name, reply);
        }

        EnsureSendable(engine, credentials);
        if (engine.ApopTimestamp is not null)
        {
            reply = await engine.ApopAsync(credentials.UserName, credentials.Password, cancellationToken).ConfigureAwait(false);
            if (reply.IsOk)
                return;
            if (reply.ResponseCode is not null)
                throw Refused(engine, "APOP", reply);
        }

        Require(engine, "USER/PASS", await UserPassAsync(engine, credentials, cancellationToken).ConfigureAwait(false));
    }

    private static async Task<Pop3Reply> UserPassAsync(UpstreamPop3Engine engine, NetworkCredential credentials, CancellationToken cancellationToken)
    {
        var reply = await engine.ExecuteAsync("USER", credentials.UserName, cancellationToken).ConfigureAwait(false);
        return reply.IsOk ? await engine.ExecuteAsync("PASS", credentials.Password, cancellationToken).ConfigureAwait(false) : reply;
    }

    /// <remarks>
    /// DIGEST-MD5 and OAUTHBEARER need the service URI, which MailKit lets only its own clients set (SaslMechanism.Uri is
    /// internal in MailKit 4.18): they are refused here rather than failing mid-exchange.
    /// </remarks>
    private static SaslMechanism? Create(string name, NetworkCredential credentials) =>
        name is "DIGEST-MD5" or "OAUTHBEARER" ? null : SaslMechanism.Create(name, credentials);

    /// <summary>USER, PASS and APOP send the name (and PASS the password) as a command line: no line breaks.</summary>
    private static void EnsureSendable(UpstreamPop3Engine engine, NetworkCredential credentials)
    {
        if (credentials.UserName.AsSpan().IndexOfAny('\r', '\n') >= 0 || credentials.Password.AsSpan().IndexOfAny('\r', '\n') >= 0)
            throw new UpstreamException(UpstreamErrorKind.Configuration,
                $"the user name or password for {engine.Host} contains a line break, which USER/PASS and APOP cannot send");
    }

    private static void Require(UpstreamPop3Engine engine, string method, Pop3Reply reply)
    {
        if (!reply.IsOk)
            throw Refused(engine, method, reply);
    }

    private static UpstreamException Refused(UpstreamPop3Engine engine, string method, Pop3Reply reply) => reply.ResponseCode switch
    {
        // The credentials may be fine: the server cannot or will not open the mailbox now.
        "IN-USE" => new(UpstreamErrorKind.Protocol, $"{engine.Host} accepted no session ({method}): the mailbox is locked by another session: {reply}"),
        "LOGIN-DELAY" => new(UpstreamErrorKind.Protocol, $"{engine.Host} refused the login ({method}): logins come too often for its LOGIN-DELAY: {reply}"),
        { } code when code.StartsWith("SYS/", StringComparison.Ordinal) =>
            new(UpstreamErrorKind.Protocol, $"{engine.Host} could not log in ({method}) because of a problem on its side: {reply}"),
        _ => new(UpstreamErrorKind.Authentication, $"{engine.Host} refused the login ({method}): {reply}"),
    };
}
