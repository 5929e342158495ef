using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;

namespace CloudSpool.Host.StatusPage;

/// <summary>
/// The status page's HTML, rendered on the server: no script, no external resource, one column on a phone.
/// Every value from storage or mail is HTML-encoded.
/// </summary>
internal static class StatusPageHtml
{
    private const string Style = """
        body{font-family:system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:.5rem;line-height:1.35;color:#222}
        h1{font-size:1.3rem;margin:.3rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
        .card{border:1px solid #ccc;border-radius:.5rem;padding:.5rem .7rem;margin:.4rem 0}
        .ok{border-left:.6rem solid #2e7d32}.failing{border-left:.6rem solid #c62828;background:#fdecea}
        .stale,.never-run{border-left:.6rem solid #f9a825;background:#fff8e1}.disabled{border-left:.6rem solid #9e9e9e;color:#666}
        .badge{font-weight:bold;text-transform:uppercase}.muted{color:#666;font-size:.9rem}
        form{display:inline}button,input{font-size:1.05rem;padding:.6rem .9rem;margin:.2rem .2rem .2rem 0;border-radius:.4rem}
        button{border:1px solid #888;background:#f4f4f4}button.on{background:#2e7d32;color:#fff}button.off{background:#c62828;color:#fff}
        table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .3rem;border-bottom:1px solid #eee;vertical-align:top}
        .err{color:#c62828;font-weight:bold}header{display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap}
        """;

    private static readonly HtmlEncoder Encoder = HtmlEncoder.Default;

    private static string E(string? text) => Encoder.Encode(text ?? "");

    /// <summary>A whole page around <paramref name="body"/>; <paramref name="refreshSeconds"/> reloads it by itself.</summary>
    public static string Page(string title, string body, int? refreshSeconds = null)
    {
        // Always to "/": a page rendered in answer to a POST (a refused switch) must not reload the POST's URL.
        var refresh = refreshSeconds is { } s ? $"<meta http-equiv=\"refresh\" content=\"{s}; url=/\">" : "";
        return $"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">{refresh}
            <title>{E(title)}</title><style>{Style}</style></head>
            <body>{body}</body></html>
            """;
    }

    /// <summary>The login form; <paramref name="problem"/> after a refused attempt.</summary>
    public static string Login(string tokenField, string token, bool anyoneMayLogIn, string? problem)
    {
        var b = new StringBuilder("<h1>CloudSpool</h1>");
        if (!anyoneMayLogIn)
            b.Append("<p class=\"err\">Nobody may log in yet.</p><p>List the POP3 users who may use this page in the configuration, " +
                     "e.g. <code>\"StatusPage\": { \"Users\": [ \"alice\" ] }</code>, give them a password with " +
                     "<code>cloudspool user add alice</code>, and restart. They log in with their POP3 user name and password.</p>");
        if (problem is not null)
            b.Append(CultureInfo.InvariantCulture, $"<p class=\"err\" id=\"problem\">{E(problem)}</p>");
        b.Append(CultureInfo.InvariantCulture, $"""
            <form method="post" action="/login">
            <input type="hidden" name="{E(tokenField)}" value="{E(token)}">
            <p><label>User<br><input name="user" autocomplete="username" autocapitalize="none" required></label></p>
            <p><label>Password<br><input name="password" type="password" autocomplete="current-password" required></label></p>
            <p><button type="submit">Log in</button></p></form>
            """);
        return Page("CloudSpool: log in", b.ToString());
    }

    /// <summary>The status page itself.</summary>
    public static string Status(StatusSnapshot s, string user, string tokenField, string token, int refreshSeconds, string? problem)
    {
        var zone = s.Switch.Zone;
        string Time(DateTimeOffset? t) => t is { } v ? TimeZoneInfo.ConvertTime(v, zone).ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture) + Ago(s.Now - v) : "never";
        string Hidden() => $"<input type=\"hidden\" name=\"{E(tokenField)}\" value=\"{E(token)}\">";

        var b = new StringBuilder();
        b.Append(CultureInfo.InvariantCulture, $"""
            <header><h1>CloudSpool</h1><span class="muted">{E(user)} ·
            <form method="post" action="/logout">{Hidden()}<button type="submit">Log out</button></form></span></header>
            <p class="muted">Updated {Time(s.Now)} ({E(zone.Id)}); reloads every {refreshSeconds} s.</p>
            """);
        if (problem is not null)
            b.Append(CultureInfo.InvariantCulture, $"<p class=\"err\" id=\"problem\">{E(problem)}</p>");

        // The away switch first: it is what a phone user comes for.
        b.Append("<h2>Forwarding to the phone</h2><div class=\"card\" id=\"switch\">");
        if (!s.Switch.Configured)
        {
            b.Append("<p>Forwarding is not configured (Forward:Mailbox, Forward:Destinations, Forward:Smtp; see docs/configuration.md, Forward).</p>");
        }
        else
        {
            var st = s.Switch.State;
            var text = s.Switch.On
                ? "ON" + (st.Until is { } u ? $" until {Time(u)}" : "")
                : "OFF";
            b.Append(CultureInfo.InvariantCulture, $"<p>Forwarding is <strong id=\"switch-state\" data-on=\"{(s.Switch.On ? "true" : "false")}\">{E(text)}</strong>" +
                $" <span class=\"muted\">since {Time(st.ChangedAt)}: {E(st.Note)}</span></p>");
            if (s.Switch.On)
            {
                b.Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"/forward\">{Hidden()}<input type=\"hidden\" name=\"action\" value=\"off\"><button class=\"off\" id=\"switch-off\" type=\"submit\">Switch off</button></form>");
            }
            else
            {
                b.Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"/forward\">{Hidden()}<input type=\"hidden\" name=\"action\" value=\"on\"><button class=\"on\" id=\"switch-on\" type=\"submit\">On</button></form>");
                foreach (var (label, until) in new[] { ("3 h", "3h"), ("8 h", "8h"), ("1 day", "1d"), ("3 days", "3d") })
                    b.Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"/forward\">{Hidden()}<input type=\"hidden\" name=\"action\" value=\"on\"><input type=\"hidden\" name=\"until\" value=\"{until}\"><button type=\"submit\" id=\"switch-on-{until}\">On for {label}</button></form>");
                b.Append(CultureInfo.InvariantCulture, $"<form method=\"post\" action=\"/forward\">{Hidden()}<input type=\"hidden\" name=\"action\" value=\"on\"><br><label>On until <input type=\"time\" name=\"until\" required></label> <button type=\"submit\" id=\"switch-on-until\">Switch on</button></form>");
            }
            b.Append("<p class=\"muted\">Switching on forwards only mail that arrives afterwards, never what is already in the mailbox.</p>");
        }
        b.Append("</div>");

        b.Append("<h2>Accounts</h2>");
        if (s.Accounts.Count == 0)
            b.Append("<p>No upstream accounts yet (<code>cloudspool account add</code>).</p>");
        foreach (var a in s.Accounts)
        {
            b.Append(CultureInfo.InvariantCulture, $"""
                <div class="card {E(a.State)}" data-account="{E(a.Account)}" data-state="{E(a.State)}">
                <strong>{E(a.Account)}</strong> <span class="badge">{E(a.State)}</span><br>
                <span class="muted">last success {Time(a.LastSuccess)} · last new mail {Time(a.LastNewMail)} · today {a.TodayMessages} new</span>
                """);
            if (a.QuotaBytes is { } limit)
            {
                var quota = Core.Health.HealthEvaluator.DescribeQuota((a.QuotaUsedBytes ?? 0, limit));
                if (a.QuotaWarning)
                    b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"err\" data-quota=\"warning\">upstream mailbox {E(quota)} full: nearly full</span>");
                else
                    b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"muted\" data-quota=\"ok\">upstream mailbox {E(quota)} full</span>");
            }
            if (a.LeftFlagged is { } flagged)
                b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"err\" data-left-flagged>{E(flagged)}</span>");
            if (a.FailureStreak > 0)
            {
                b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"err\">{a.FailureStreak} failed {(a.FailureStreak == 1 ? "run" : "runs in a row")}</span> ({E(ErrorKind(a.LastErrorKind))}): {E(a.LastError)}");
                if (a.NextAttemptAfter is { } next)
                    b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"muted\">next scheduled try after {Time(next)}</span>");
            }
            foreach (var f in a.FailingMessages)
                b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"muted\">message {E(f.Key)} failed {f.Attempts} times: {E(f.Error)}</span>");
            b.Append("</div>");
        }
        if (s.Store is { } store)
        {
            var level = store.Level.ToString().ToLowerInvariant();
            b.Append(CultureInfo.InvariantCulture, $"<div class=\"card{(store.Level == Core.Spool.StoreCapacityLevel.Ok ? "" : " failing")}\" id=\"store\" data-store-level=\"{level}\">");
            b.Append(CultureInfo.InvariantCulture, $"<strong>embedded store</strong> <span class=\"badge\">{level}</span><br>");
            b.Append(store.Problem is { } storeProblem ? $"<span class=\"err\">{E(storeProblem)}</span>" : $"<span class=\"muted\">{E(store.Describe())}</span>");
            b.Append("</div>");
        }

        foreach (var (mailbox, rows) in s.Mail)
        {
            b.Append(CultureInfo.InvariantCulture, $"<h2>Recent mail in {E(mailbox)}</h2>");
            if (rows.Count == 0)
                b.Append("<p class=\"muted\">No mail yet.</p>");
            else
                b.Append("<table><tr><th>Received</th><th>From / subject</th></tr>");
            foreach (var r in rows)
            {
                var summary = r.Message.Summary;
                b.Append(CultureInfo.InvariantCulture, $"<tr><td>{Time(r.Message.ReceivedAt)}</td><td>{E(summary.From)}<br><strong>{E(summary.Subject)}</strong>");
                foreach (var line in r.Forwarding)
                    b.Append(CultureInfo.InvariantCulture, $"<br><span class=\"muted\">{E(line)}</span>");
                b.Append("</td></tr>");
            }
            if (rows.Count > 0)
                b.Append("</table>");
        }

        if (s.EdgeExpected)
            AppendEdge(b, s.Edge, Time);

        b.Append("<h2>Schedules</h2><table><tr><th>Job</th><th>Next</th><th>Last run</th></tr>");
        foreach (var v in s.Schedules)
        {
            var next = v.Enabled && v.NextFires.Count > 0 ? Time(v.NextFires[0]) : "not scheduled";
            var last = v.LastRun is { } t ? $"{Time(t)} {v.LastOutcome?.ToLowerInvariant()}" : "never";
            b.Append(CultureInfo.InvariantCulture, $"<tr><td>{E(v.Job)}<br><span class=\"muted\">{E(v.Cron)} {E(v.TimeZone)}</span></td><td>{E(next)}</td><td>{E(last)}</td></tr>");
        }
        b.Append("</table>");
        return Page("CloudSpool", b.ToString(), refreshSeconds);
    }

    /// <summary>The POP3 edge of this host: where it listens, sessions, index sync, cache, storage.</summary>
    private static void AppendEdge(StringBuilder b, Edge.EdgeFigures? edge, Func<DateTimeOffset?, string> time)
    {
        b.Append("<h2>POP3 edge</h2>");
        if (edge is null)
        {
            b.Append("<div class=\"card failing\" id=\"edge\" data-state=\"down\">The POP3 edge is not serving: it could not listen (see the log).</div>");
            return;
        }
        var state = edge.StorageReachable ? "ok" : "failing";
        b.Append(CultureInfo.InvariantCulture, $"<div class=\"card {state}\" id=\"edge\" data-state=\"{state}\">");
        b.Append(CultureInfo.InvariantCulture, $"listening on {E(string.Join(", ", edge.EndPoints))}<br>");
        b.Append(CultureInfo.InvariantCulture, $"<span id=\"edge-sessions\">{edge.SessionsServed} sessions served</span>, {edge.ActiveSessions} open now<br>");
        b.Append(CultureInfo.InvariantCulture, $"last index sync {time(edge.LastIndexSync)} ({edge.MailboxesIndexed} mailboxes)<br>");
        b.Append(edge.Cache is { } cache ? $"<span id=\"edge-cache\">cache {E(cache.Describe())}</span><br>" : "no local cache<br>");
        b.Append(edge.StorageReachable ? "storage reachable" : "<span class=\"err\">storage not reachable: serving what the edge holds locally</span>");
        b.Append("</div>");
    }

    /// <summary>A plain page for a refused request (no login, a missing form token).</summary>
    public static string Problem(string title, string text) =>
        Page(title, $"<h1>{E(title)}</h1><p>{E(text)}</p><p><a href=\"/\">Back to the status page</a></p>");

    private static string ErrorKind(string? kind) => kind switch
    {
        null => "error",
        "Dns" => "name lookup",
        "Connect" => "cannot connect",
        "Tls" => "TLS",
        "Authentication" => "login refused",
        var other => other.ToLowerInvariant(),
    };

    private static string Ago(TimeSpan span)
    {
        var length = span.Duration();
        var amount = length.TotalMinutes < 1 ? null
            : length.TotalMinutes < 120 ? $"{length.TotalMinutes:0} min"
            : length.TotalHours < 48 ? $"{length.TotalHours:0} h"
            : $"{length.TotalDays:0} days";
        return amount is null ? (span < TimeSpan.Zero ? " (in a moment)" : " (just now)")
            : span < TimeSpan.Zero ? $" (in {amount})" : $" ({amount} ago)";
    }
}
