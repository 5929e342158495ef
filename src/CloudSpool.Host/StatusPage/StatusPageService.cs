using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Security.Claims;
using System.Text.Json;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Health;
using CloudSpool.Edge;
using CloudSpool.Host.Cli;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using CloudSpool.Pop3;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Host.StatusPage;

/// <param name="runtime">The host's runtime.</param>
/// <param name="edge">The edge's counters, when this host serves POP3.</param>
/// <summary>
/// The status page and the health endpoint as a hosted service of `run`, `worker` and `edge`: a small Kestrel server
/// (StatusPage section). Failing to listen is logged and the rest of the host keeps running.
/// </summary>
/// <remarks>
/// Login: a POP3 user listed in StatusPage:Users, with their POP3 password (checked against the stored ASP.NET Core
/// Identity hash), admitted by a <see cref="LoginThrottle"/> (failures per address and per user, lockouts) before the
/// hash is checked. Cookie authentication (HttpOnly, SameSite=Strict, Secure over HTTPS) with keys in memory only (a
/// restart asks to log in again), and a session behind each cookie that logout and a password change end; every POST
/// carries an antiforgery token; a refused login waits a second, one at a time for the whole process. HTTPS is TLS 1.2
/// or 1.3. /healthz answers without login and names no account.
/// </remarks>
internal sealed partial class StatusPageService(Runtime runtime, Func<Edge.EdgeFigures?>? edge) : IHostedService, IAsyncDisposable
{
    /// <summary>How long a refused login waits before it is answered (refused logins queue behind each other).</summary>
    public static readonly TimeSpan FailedLoginDelay = TimeSpan.FromSeconds(1);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly ILogger _logger = runtime.Loggers.CreateLogger<StatusPageService>();
    /// <summary>Logins of the page at once, from the whole process: a cookie's session id → who, and their password's stamp.</summary>
    public const int MaxSessions = 256;

    private const string SessionClaim = "cloudspool-session";

    private readonly SemaphoreSlim _refusals = new(1, 1);
    private readonly HashSet<string> _users = runtime.Options.StatusPage.Users.ToHashSet(StringComparer.Ordinal);

    // Failures count per address and per user, guesses in flight included, and at most two guesses of one address are
    // checked at once: the password hash is only ever checked after this admits the attempt.
    private readonly LoginThrottle _throttle = new(new LoginThrottleOptions { PerUser = true, MaxConcurrentPerAddress = 2, FailureDelay = FailedLoginDelay, MaxFailureDelay = FailedLoginDelay });

    // The cookie alone is not enough: its session must still be here (logout removes it) and the user's password hash
    // must still be the one it logged in with (a password change ends every session of the user).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PageSession> _sessions = new(StringComparer.Ordinal);
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var options = runtime.Options.StatusPage;
        X509Certificate2? certificate = null;
        WebApplication app;
        try
        {
            if (options.Https)
                certificate = Edge.EdgeCertificate.Resolve(runtime.Options.Edge).Certificate;
            app = Build(certificate);
        }
        catch (Exception ex) when (ex is CryptographicException or IOException or UnauthorizedAccessException)
        {
            HostLog.StatusPageNotListening(_logger, ex, options.Listen, options.Port);
            return;
        }
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            HostLog.StatusPageNotListening(_logger, ex, options.Listen, options.Port);
            return;
        }
        _app = app;
        foreach (var url in app.Urls)
        {
            if (certificate is not null)
                HostLog.StatusPageListeningTls(_logger, url, Edge.EdgeCertificate.Fingerprint(certificate));
            else
                HostLog.StatusPageListening(_logger, url);
        }
        if (certificate is null && !IPAddress.IsLoopback(IPAddress.Parse(options.Listen)))
            HostLog.StatusPagePlainHttpOnNetwork(_logger, options.Listen);
        if (_users.Count == 0)
            HostLog.StatusPageNobodyMayLogIn(_logger);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        _refusals.Dispose();
    }

    private WebApplication Build(X509Certificate2? certificate)
    {
        var options = runtime.Options.StatusPage;
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(runtime.Loggers));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 64 * 1024;
            k.Listen(IPAddress.Parse(options.Listen), options.Port, listen =>
            {
                if (certificate is not null)
                    listen.UseHttps(HttpsOptions(certificate));
            });
        });
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie(o =>
        {
            o.Cookie.Name = "cloudspool-login";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.ExpireTimeSpan = TimeSpan.FromDays(7);
            o.SlidingExpiration = true;
            // Whatever was asked for, the login page, which leads back to the page (the only one there is).
            o.Events.OnValidatePrincipal = ValidateSessionAsync;
            o.Events.OnRedirectToLogin = c => RedirectToLogin(c.Response);
            o.Events.OnRedirectToAccessDenied = c => RedirectToLogin(c.Response);
        });
        builder.Services.AddAuthorization(o => o.AddPolicy(Policy, p => p.RequireAuthenticatedUser()
            .RequireAssertion(c => c.User.Identity?.Name is { } name && _users.Contains(name))));
        builder.Services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "cloudspool-form";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.FormFieldName = "_token";
            o.SuppressXFrameOptionsHeader = true;
        });

        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers.CacheControl = "no-store";
            headers["Referrer-Policy"] = "no-referrer";
            headers.ContentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
            try
            {
                await next(context).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && !context.Response.HasStarted)
            {
                // Storage down or slow: say so instead of an empty 500; the details go to the log only.
                HostLog.StatusPageRequestFailed(_logger, ex, context.Request.Path);
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                await WriteHtmlAsync(context, StatusPageHtml.Problem("Not available", "CloudSpool could not read its storage just now; see its log. The page tries again by itself."), context.RequestAborted).ConfigureAwait(false);
            }
        });
        app.UseAuthentication();
        app.UseAuthorization();

        app.MapGet("/healthz/live", () => Results.Json(new { status = "live" }, Json));
        app.MapGet("/healthz/ready", new Func<HttpContext, Task<IResult>>(ReadyAsync));
        app.MapGet("/healthz", new Func<HttpContext, Task<IResult>>(HealthAsync));
        app.MapGet("/login", (HttpContext context, IAntiforgery antiforgery) => LoginPage(context, antiforgery, StatusCodes.Status200OK, null));
        app.MapPost("/login", LoginAsync);
        app.MapPost("/logout", LogoutAsync);
        app.MapGet("/", StatusAsync).RequireAuthorization(Policy);
        app.MapPost("/forward", ForwardAsync).RequireAuthorization(Policy);
        app.MapGet("/status.json", new Func<HttpContext, Task<IResult>>(StatusJsonAsync)).RequireAuthorization(Policy);
        return app;
    }

    private const string Policy = "status-page-user";

    /// <summary>HTTPS as the upstream client and the POP3 edge have it: TLS 1.2 and 1.3 only, whatever the system allows.</summary>
    internal static HttpsConnectionAdapterOptions HttpsOptions(X509Certificate2 certificate) => new()
    {
        ServerCertificate = certificate,
        SslProtocols = Pop3ServerOptions.PinnedTlsProtocols,
    };

    private async Task<IResult> StatusAsync(HttpContext context, IAntiforgery antiforgery) =>
        await StatusPageAsync(context, antiforgery, StatusCodes.Status200OK, null).ConfigureAwait(false);

    private async Task<IResult> StatusPageAsync(HttpContext context, IAntiforgery antiforgery, int status, string? problem)
    {
        var snapshot = await StatusSnapshot.ReadAsync(runtime, edge?.Invoke(), edge is not null, context.RequestAborted).ConfigureAwait(false);
        var tokens = antiforgery.GetAndStoreTokens(context);
        return Html(StatusPageHtml.Status(snapshot, context.User.Identity!.Name!, tokens.FormFieldName, tokens.RequestToken!,
            (int)runtime.Options.StatusPage.RefreshInterval.TotalSeconds, problem), status);
    }

    /// <summary>Per-account state (as `cloudspool status --json`) and the switch, for scripts; behind the login.</summary>
    private async Task<IResult> StatusJsonAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        var accounts = await StatusCommand.CollectAsync(runtime, ct).ConfigureAwait(false);
        var state = await runtime.ForwardControl.GetSwitchAsync(ct).ConfigureAwait(false);
        var forwarding = new { configured = runtime.Options.Forward.Configured, on = state.IsOnAt(DateTimeOffset.UtcNow), until = state.Until, changedAt = state.ChangedAt, note = state.Note };
        return Results.Json(new { accounts, forwarding }, Json);
    }

    /// <summary>The away switch: the same calls as `cloudspool forward on [--until]` and `forward off`.</summary>
    private async Task<IResult> ForwardAsync(HttpContext context, IAntiforgery antiforgery)
    {
        var ct = context.RequestAborted;
        if (!await antiforgery.IsRequestValidAsync(context).ConfigureAwait(false))
            return BadForm();
        var form = await context.Request.ReadFormAsync(ct).ConfigureAwait(false);
        var user = context.User.Identity!.Name!;
        if (!runtime.Options.Forward.Configured)
            return await StatusPageAsync(context, antiforgery, StatusCodes.Status400BadRequest, "Forwarding is not configured.").ConfigureAwait(false);
        switch (form["action"].ToString())
        {
            case "on":
                DateTimeOffset? until = null;
                if (form["until"].ToString() is { Length: > 0 } text)
                {
                    if (!ForwardCommands.TryParseUntil(text, DateTimeOffset.UtcNow, ForwardCommands.Zone(runtime), out var parsed))
                        return await StatusPageAsync(context, antiforgery, StatusCodes.Status400BadRequest, $"'{text}' is not a time in the future; nothing changed.").ConfigureAwait(false);
                    until = parsed;
                }
                var state = await runtime.Forward.SwitchOnAsync(until, ct).ConfigureAwait(false);
                HostLog.StatusPageSwitchedOn(_logger, user, state.Until, state.Watermark ?? "(empty mailbox)");
                return SeeOther("/");
            case "off":
                await runtime.Forward.SwitchOffAsync($"switched off on the status page by {user}", ct).ConfigureAwait(false);
                HostLog.StatusPageSwitchedOff(_logger, user);
                return SeeOther("/");
            default:
                return await StatusPageAsync(context, antiforgery, StatusCodes.Status400BadRequest, "Unknown action; nothing changed.").ConfigureAwait(false);
        }
    }

    /// <summary>Readiness: storage answers within a few seconds (a container that cannot reach it gets no traffic).</summary>
    private async Task<IResult> ReadyAsync(HttpContext context) =>
        await StorageReachableAsync(context.RequestAborted).ConfigureAwait(false)
            ? Results.Json(new { status = "ready", storage = "reachable" }, Json)
            : Results.Json(new { status = "not-ready", storage = "unreachable" }, Json, statusCode: StatusCodes.Status503ServiceUnavailable);

    private async Task<bool> StorageReachableAsync(CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await runtime.Accounts.ListAsync(timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            HostLog.HealthEndpointStorageUnreachable(_logger, ex.Message);
            return false;
        }
    }

    /// <summary>
    /// The whole picture without login: 200 when storage answers and no account is failing or stale, else 503; the
    /// body counts accounts per state and names none.
    /// </summary>
    private async Task<IResult> HealthAsync(HttpContext context)
    {
        var ct = context.RequestAborted;
        if (!await StorageReachableAsync(ct).ConfigureAwait(false))
            return Results.Json(new { status = "down", storage = "unreachable", accounts = new Dictionary<string, int>() }, Json, statusCode: StatusCodes.Status503ServiceUnavailable);
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var now = DateTimeOffset.UtcNow;
        foreach (var account in await runtime.Accounts.ListAsync(ct).ConfigureAwait(false))
        {
            var state = await runtime.States.GetStateAsync(account.Name, ct).ConfigureAwait(false);
            var name = StatusCommand.StateName(HealthEvaluator.Evaluate(account, state, now, runtime.HealthThresholds).State);
            counts[name] = counts.GetValueOrDefault(name) + 1;
        }
        var troubled = counts.ContainsKey("failing") || counts.ContainsKey("stale");
        return Results.Json(new { status = troubled ? "degraded" : "ok", storage = "reachable", accounts = counts }, Json,
            statusCode: troubled ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status200OK);
    }
}
