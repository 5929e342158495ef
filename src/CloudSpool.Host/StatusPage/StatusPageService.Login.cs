using System.Security.Cryptography;
using System.Security.Claims;
using CloudSpool.Core.Edge;
using CloudSpool.Edge;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using CloudSpool.Pop3;

namespace CloudSpool.Host.StatusPage;

/// <summary>The status page's login: the form, the throttled password check, the session behind each cookie, logout.</summary>
internal sealed partial class StatusPageService
{
    private sealed record PageSession(string User, string PasswordStamp, DateTimeOffset Created);

    /// <summary>A stamp of a stored password hash (never the hash): changes whenever the password does.</summary>
    private static string Stamp(string passwordHash) =>
        Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(passwordHash)));

    /// <summary>Every request with a login cookie: its session must be live and the user's password unchanged since.</summary>
    private async Task ValidateSessionAsync(CookieValidatePrincipalContext context)
    {
        // The health endpoints need no login: they never read the user, so they answer while storage does not.
        if (context.HttpContext.Request.Path.StartsWithSegments("/healthz", StringComparison.Ordinal))
            return;
        var name = context.Principal?.Identity?.Name;
        var id = context.Principal?.FindFirst(SessionClaim)?.Value;
        string? why = null;
        if (name is null || id is null || !_sessions.TryGetValue(id, out var session) || session.User != name)
        {
            why = "its session has ended (logged out, or the process restarted)";
        }
        else
        {
            var user = await runtime.Pop3Users.GetAsync(name, context.HttpContext.RequestAborted).ConfigureAwait(false);
            if (user is null || !CryptographicOperations.FixedTimeEquals(
                    System.Text.Encoding.ASCII.GetBytes(Stamp(user.PasswordHash)), System.Text.Encoding.ASCII.GetBytes(session.PasswordStamp)))
            {
                why = user is null ? "the user was removed" : "the password changed since";
                _sessions.TryRemove(id, out _);
            }
        }
        if (why is null)
            return;
        HostLog.StatusPageSessionRefused(_logger, name ?? "?", context.HttpContext.Connection.RemoteIpAddress?.ToString() ?? "?", why);
        context.RejectPrincipal();
        await context.HttpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme).ConfigureAwait(false);
    }

    private string NewSession(string user, string passwordHash)
    {
        var id = Base64Url(RandomNumberGenerator.GetBytes(32));
        _sessions[id] = new PageSession(user, Stamp(passwordHash), DateTimeOffset.UtcNow);
        // Bounded: past the limit the oldest logins end (they log in again).
        while (_sessions.Count > MaxSessions)
        {
            var oldest = _sessions.MinBy(kv => kv.Value.Created);
            _sessions.TryRemove(oldest.Key, out _);
        }
        return id;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static Task RedirectToLogin(HttpResponse response)
    {
        // A script asking for JSON gets 401, a browser the login page.
        if (response.HttpContext.Request.Path.StartsWithSegments("/status.json", StringComparison.Ordinal))
            response.StatusCode = StatusCodes.Status401Unauthorized;
        else
            response.Redirect("/login");
        return Task.CompletedTask;
    }

    private static async Task WriteHtmlAsync(HttpContext context, string html, CancellationToken ct)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        await context.Response.WriteAsync(html, ct).ConfigureAwait(false);
    }

    private static IResult Html(string html, int status = StatusCodes.Status200OK) =>
        Results.Content(html, "text/html; charset=utf-8", System.Text.Encoding.UTF8, status);

    private IResult LoginPage(HttpContext context, IAntiforgery antiforgery, int status, string? problem)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        return Html(StatusPageHtml.Login(tokens.FormFieldName, tokens.RequestToken!, _users.Count > 0, problem), status);
    }

    private static IResult BadForm() =>
        Html(StatusPageHtml.Problem("Form expired", "The form was not sent by this page (its token is missing or old). Reload the page and try again."), StatusCodes.Status400BadRequest);

    private async Task<IResult> LoginAsync(HttpContext context, IAntiforgery antiforgery)
    {
        var ct = context.RequestAborted;
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return BadForm();
        var form = await context.Request.ReadFormAsync(ct).ConfigureAwait(false);
        // POP3 user names are lower-case; a phone keyboard may have capitalised the first letter. A client identity
        // (alice+phone) is not a user of the page.
        var name = Pop3Names.TryParseLogin(form["user"].ToString().Trim(), out var parsed, out var client) && parsed == client ? parsed : null;
        var password = form["password"].ToString();
        var remote = context.Connection.RemoteIpAddress;
        // Only a well-formed name reaches the log or the throttle's table, never arbitrary input (line breaks, control characters).
        var shown = name ?? "(not a user name)";

        using var attempt = await _throttle.EnterAsync(remote, shown, ct).ConfigureAwait(false);
        if (attempt.Refusal is { } refusal)
        {
            // Refused whatever the password: otherwise a lockout would only slow the guessing down.
            var what = refusal.Scope == LoginScope.Address ? "from your address" : "for this user";
            HostLog.StatusPageLoginLockedOut(_logger, shown, remote?.ToString() ?? "?", refusal.Scope == LoginScope.Address ? "address" : "user", refusal.Left);
            context.Response.Headers.RetryAfter = ((long)Math.Ceiling(refusal.Left.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            return LoginPage(context, antiforgery, StatusCodes.Status429TooManyRequests,
                $"Too many failed logins {what}; try again in {LoginRefusal.Describe(refusal.Left)}.");
        }

        // Every well-formed name is read from storage, listed in StatusPage:Users or not, and an unknown one checks a
        // decoy hash: the answer takes as long whether the user exists, may use the page, or neither.
        var user = name is null ? null : await runtime.Pop3Users.GetAsync(name, ct).ConfigureAwait(false);
        bool valid;
        if (user is null || !_users.Contains(user.Name))
        {
            Pop3Passwords.VerifyDecoy(password);
            valid = false;
        }
        else
        {
            valid = Pop3Passwords.Verify(user.PasswordHash, password);
        }
        if (!valid)
        {
            var penalty = attempt.Failed();
            HostLog.StatusPageLoginRefused(_logger, shown, remote?.ToString() ?? "?");
            if (penalty.AddressLocked)
                HostLog.StatusPageAddressLockedOut(_logger, remote?.ToString() ?? "?", penalty.Lockout, penalty.RecentFailures);
            if (penalty.UserLocked)
                HostLog.StatusPageUserLockedOut(_logger, shown, penalty.Lockout, penalty.UserFailures);
            // Refused logins wait in one queue: at most one refusal a second for the whole process.
            await _refusals.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                await Task.Delay(FailedLoginDelay, ct).ConfigureAwait(false);
            }
            finally
            {
                _refusals.Release();
            }
            return LoginPage(context, antiforgery, StatusCodes.Status401Unauthorized, "Wrong user name or password (or this user may not use the status page).");
        }
        attempt.Succeeded();
        var identity = new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, user!.Name), new Claim(SessionClaim, NewSession(user.Name, user.PasswordHash))],
            CookieAuthenticationDefaults.AuthenticationScheme);
        await context.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity)).ConfigureAwait(false);
        HostLog.StatusPageLoggedIn(_logger, user.Name, remote?.ToString() ?? "?");
        return SeeOther("/");
    }

    /// <summary>303: after a POST, the browser loads the page with GET (a reload never repeats the action).</summary>
    private static IResult SeeOther(string location) => new SeeOtherResult(location);

    private sealed class SeeOtherResult(string location) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.StatusCode = StatusCodes.Status303SeeOther;
            httpContext.Response.Headers.Location = location;
            return Task.CompletedTask;
        }
    }

    private async Task<IResult> LogoutAsync(HttpContext context, IAntiforgery antiforgery)
    {
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return BadForm();
        // The session ends here, not only in this browser: a copy of the cookie is refused from now on.
        if (context.User.FindFirst(SessionClaim)?.Value is { } id)
            _sessions.TryRemove(id, out _);
        await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme).ConfigureAwait(false);
        return SeeOther("/login");
    }
}
