using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudSpool.Core.Edge;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Edge;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The status page and health endpoint of a real `cloudspool run` process on Azurite, driven over HTTP: login,
/// refused passwords, antiforgery, the away switch (checked with `cloudspool forward status`) and /healthz.
/// </summary>
public sealed partial class StatusPageTests : DovecotAndSpoolTest
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    /// <summary>Environment of a host with the page (owner may log in), forwarding configured but never scheduled, and short refreshes.</summary>
    internal static Dictionary<string, string> PageEnvironment(PullHarness spool, params (string Key, string Value)[] extra)
    {
        var env = spool.CliEnvironment(
            ("CLOUDSPOOL__StatusPage__Users__0", "owner"),
            ("CLOUDSPOOL__StatusPage__RefreshInterval", "00:00:01"),
            ("CLOUDSPOOL__Scheduler__RefreshInterval", "00:00:01"),
            ("CLOUDSPOOL__Forward__Mailbox", "home"),
            ("CLOUDSPOOL__Forward__Sender", "cloudspool@home.test"),
            ("CLOUDSPOOL__Forward__Destinations__0__Address", "phone@mobile.test"),
            ("CLOUDSPOOL__Forward__Smtp__Host", "127.0.0.1"),
            ("CLOUDSPOOL__Forward__Smtp__Port", "25"),
            ("CLOUDSPOOL__Forward__Smtp__Security", "none"),
            ("CLOUDSPOOL__Forward__Schedule", "0 0 0 1 1 ? 2099"));
        foreach (var (k, v) in extra)
            env[k] = v;
        return env;
    }

    /// <summary>The base URL from the host's "status page listening on http://127.0.0.1:PORT" log line.</summary>
    internal static async Task<Uri> WaitForPageAsync(CliProcess process)
    {
        var deadline = DateTime.UtcNow + Bound;
        while (true)
        {
            var match = ListeningLine().Match(process.Stderr);
            if (match.Success)
                return new Uri(match.Groups[1].Value + "/");
            Assert.False(process.HasExited, "cloudspool exited: " + process.Stderr);
            Assert.True(DateTime.UtcNow < deadline, "the status page did not listen: " + process.Stderr);
            await Task.Delay(200);
        }
    }

    [GeneratedRegex(@"status page listening on (https?://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();

    [GeneratedRegex(@"status page listening on https://\S+, TLS certificate SHA-256 fingerprint ([0-9A-F:]+)")]
    private static partial Regex FingerprintLine();

    [GeneratedRegex(@"POP3 edge listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex EdgeListeningLine();

    [GeneratedRegex("name=\"_token\" value=\"([^\"]+)\"")]
    private static partial Regex TokenField();

    internal static async Task<bool> ForwardIsOnAsync(Dictionary<string, string> env)
    {
        var status = await CliProcess.RunAsync(env, "forward", "status", "--json");
        Assert.True(status.ExitCode == 0, status.Stderr);
        using var json = JsonDocument.Parse(status.Stdout);
        return json.RootElement.GetProperty("on").GetBoolean();
    }

    internal static async Task<string> TokenOfAsync(HttpClient client, string path)
    {
        var page = await client.GetStringAsync(new Uri(path, UriKind.Relative));
        return TokenField().Match(page).Groups[1].Value;
    }

    internal static FormUrlEncodedContent Form(params (string Key, string Value)[] fields) =>
        new(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));

    [Fact]
    public async Task The_page_needs_a_listed_user_with_the_right_password_and_its_forms_need_the_token_and_the_switch_is_the_cli_switch()
    {
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("s3cret-pw")), CancellationToken.None));
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("guest", "home", Pop3Passwords.Hash("guest-pw")), CancellationToken.None));
        var env = PageEnvironment(Spool);
        using var host = CliProcess.Start(env, "run");
        var url = await WaitForPageAsync(host);
        using var handler = new HttpClientHandler { AllowAutoRedirect = false, CookieContainer = new CookieContainer() };
        using var client = new HttpClient(handler) { BaseAddress = url, Timeout = Bound };

        // Health without login: live, ready, and the summary (no accounts yet: ok).
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("healthz/live", UriKind.Relative))).StatusCode);
        var ready = await client.GetAsync(new Uri("healthz/ready", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Contains("\"storage\":\"reachable\"", await ready.Content.ReadAsStringAsync());
        var health = await client.GetAsync(new Uri("healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal("{\"status\":\"ok\",\"storage\":\"reachable\",\"accounts\":{}}", await health.Content.ReadAsStringAsync());

        // The page and the switch need a login.
        var anonymous = await client.GetAsync(new Uri("/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Redirect, anonymous.StatusCode);
        Assert.Equal("/login", anonymous.Headers.Location!.OriginalString);
        var token = await TokenOfAsync(client, "login");
        Assert.NotEmpty(token);
        var anonymousSwitch = await client.PostAsync(new Uri("forward", UriKind.Relative), Form(("_token", token), ("action", "on")));
        Assert.Equal("/login", anonymousSwitch.Headers.Location!.OriginalString);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync(new Uri("status.json", UriKind.Relative))).StatusCode);

        // A wrong password, a user not listed in StatusPage:Users, an unknown user: refused, each after the delay.
        foreach (var (user, password) in new[] { ("owner", "wrong"), ("guest", "guest-pw"), ("nobody", "s3cret-pw") })
        {
            var watch = Stopwatch.StartNew();
            var refused = await client.PostAsync(new Uri("login", UriKind.Relative), Form(("_token", token), ("user", user), ("password", password)));
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
            Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(900), $"refused after {watch.Elapsed}");
            Assert.Contains("Wrong user name or password", await refused.Content.ReadAsStringAsync());
            Assert.Null(handler.CookieContainer.GetCookies(url)["cloudspool-login"]);
        }
        // The right password without the form token: refused too.
        var forged = await client.PostAsync(new Uri("login", UriKind.Relative), Form(("user", "owner"), ("password", "s3cret-pw")));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.Null(handler.CookieContainer.GetCookies(url)["cloudspool-login"]);

        var login = await client.PostAsync(new Uri("login", UriKind.Relative), Form(("_token", token), ("user", "Owner"), ("password", "s3cret-pw")));
        Assert.Equal(HttpStatusCode.SeeOther, login.StatusCode);
        Assert.Equal("/", login.Headers.Location!.OriginalString);
        var cookie = Assert.Single(login.Headers.GetValues("Set-Cookie"), c => c.StartsWith("cloudspool-login=", StringComparison.Ordinal));
        Assert.Contains("httponly", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", cookie, StringComparison.OrdinalIgnoreCase);

        var page = await client.GetAsync(new Uri("/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Forwarding is <strong id=\"switch-state\" data-on=\"false\">OFF</strong>", html);
        Assert.Contains("<meta http-equiv=\"refresh\" content=\"1; url=/\">", html);
        Assert.Equal("DENY", page.Headers.GetValues("X-Frame-Options").Single());
        token = TokenField().Match(html).Groups[1].Value;

        // The edge of the same host: its figures, and a POP3 session counted once it is served.
        Assert.Contains("<div class=\"card ok\" id=\"edge\" data-state=\"ok\">listening on 127.0.0.1:", html);
        Assert.Contains("storage reachable", html);
        Assert.Matches(@"<span id=""edge-cache"">cache 0\.0 of \d+\.\d MiB \(0 messages; limit 50 % of the disk, 2048 MiB kept free\), no reads yet</span>", html);
        var pop3Port = int.Parse(EdgeListeningLine().Match(host.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
        using (var pop3 = new MailKit.Net.Pop3.Pop3Client())
        {
            await pop3.ConnectAsync("127.0.0.1", pop3Port, MailKit.Security.SecureSocketOptions.None);
            await pop3.AuthenticateAsync("owner", "s3cret-pw");
            Assert.Equal(0, pop3.Count);
            await pop3.DisconnectAsync(quit: true);
        }
        var deadline = DateTime.UtcNow + Bound;
        while (!(await client.GetStringAsync(new Uri("/", UriKind.Relative))).Contains("<span id=\"edge-sessions\">1 sessions served</span>", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the page did not count the POP3 session");
            await Task.Delay(200);
        }

        // The switch without the token changes nothing; with it, the same switch `cloudspool forward` shows.
        var forgedSwitch = await client.PostAsync(new Uri("forward", UriKind.Relative), Form(("action", "on")));
        Assert.Equal(HttpStatusCode.BadRequest, forgedSwitch.StatusCode);
        Assert.False((await Spool.Runtime.ForwardControl.GetSwitchAsync(CancellationToken.None)).On);

        var on = await client.PostAsync(new Uri("forward", UriKind.Relative), Form(("_token", token), ("action", "on"), ("until", "3h")));
        Assert.Equal(HttpStatusCode.SeeOther, on.StatusCode);
        var status = await CliProcess.RunAsync(env, "forward", "status", "--json");
        using (var json = JsonDocument.Parse(status.Stdout))
        {
            Assert.True(json.RootElement.GetProperty("on").GetBoolean());
            var until = json.RootElement.GetProperty("until").GetDateTimeOffset();
            Assert.InRange(until - DateTimeOffset.UtcNow, TimeSpan.FromHours(2.9), TimeSpan.FromHours(3));
        }
        Assert.Contains("data-on=\"true\">ON until", await client.GetStringAsync(new Uri("/", UriKind.Relative)));

        var bad = await client.PostAsync(new Uri("forward", UriKind.Relative), Form(("_token", token), ("action", "on"), ("until", "yesterday")));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var badHtml = await bad.Content.ReadAsStringAsync();
        Assert.Contains("&#x27;yesterday&#x27; is not a time in the future; nothing changed.", badHtml);
        Assert.Contains("content=\"1; url=/\"", badHtml); // its reload goes to the page, not to the POST's URL

        using (var json = JsonDocument.Parse(await client.GetStringAsync(new Uri("status.json", UriKind.Relative))))
        {
            Assert.Empty(json.RootElement.GetProperty("accounts").EnumerateArray());
            Assert.True(json.RootElement.GetProperty("forwarding").GetProperty("on").GetBoolean());
        }

        var off = await client.PostAsync(new Uri("forward", UriKind.Relative), Form(("_token", token), ("action", "off")));
        Assert.Equal(HttpStatusCode.SeeOther, off.StatusCode);
        var offStatus = await CliProcess.RunAsync(env, "forward", "status", "--json");
        using (var json = JsonDocument.Parse(offStatus.Stdout))
        {
            Assert.False(json.RootElement.GetProperty("on").GetBoolean());
            Assert.Equal("switched off on the status page by owner", json.RootElement.GetProperty("note").GetString());
        }

        var logout = await client.PostAsync(new Uri("logout", UriKind.Relative), Form(("_token", token)));
        Assert.Equal(HttpStatusCode.SeeOther, logout.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await client.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);

        await host.TerminateAsync();
        Assert.Equal(0, await host.WaitAsync(Bound));
        Assert.DoesNotContain("s3cret-pw", host.Stdout + host.Stderr, StringComparison.Ordinal);
        // The edge left its cache's figures for `status` on this machine.
        Assert.Matches(@"edge cache: 0\.0 of \d+\.\d MiB \(0 messages; limit 50 % of the disk, 2048 MiB kept free\), no reads yet \(as of ", (await CliProcess.RunAsync(env, "status")).Stdout);
        Assert.Contains("status page: login refused for 'owner'", host.Stderr);
        Assert.Contains("status page: owner switched forwarding off", host.Stderr);
    }

    /// <summary>An HTTP client whose connections come from <paramref name="local"/> (any 127.x address is this machine).</summary>
    private static HttpClient ClientFrom(IPAddress local, Uri url, CookieContainer? cookies = null)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            CookieContainer = cookies ?? new CookieContainer(),
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                try
                {
                    socket.Bind(new IPEndPoint(local, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new HttpClient(handler, disposeHandler: true) { BaseAddress = url, Timeout = Bound };
    }

    private static async Task<HttpResponseMessage> LogInAsync(HttpClient client, string user, string password) =>
        await client.PostAsync(new Uri("login", UriKind.Relative), Form(("_token", await TokenOfAsync(client, "login")), ("user", user), ("password", password)));

    [Fact]
    public async Task A_hundred_parallel_guesses_lock_the_address_and_the_user_and_then_even_the_right_password_is_refused()
    {
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("s3cret-pw")), CancellationToken.None));
        using var host = CliProcess.Start(PageEnvironment(Spool), "edge");
        var url = await WaitForPageAsync(host);
        var here = IPAddress.Loopback;
        using var guesser = ClientFrom(here, url);
        // The owner elsewhere: a success from the guesser's own address would rightly forget the owner's failures there.
        using var owner = ClientFrom(IPAddress.Parse("127.0.0.2"), url);
        var token = await TokenOfAsync(guesser, "login");
        var ownerToken = await TokenOfAsync(owner, "login");

        // 100 guesses at once, and the right password among them.
        var guesses = Enumerable.Range(0, 100).Select(i => guesser.PostAsync(new Uri("login", UriKind.Relative),
            Form(("_token", token), ("user", "owner"), ("password", "guess-" + i)))).ToList();
        var right = owner.PostAsync(new Uri("login", UriKind.Relative), Form(("_token", ownerToken), ("user", "owner"), ("password", "s3cret-pw")));
        var answers = await Task.WhenAll(guesses);
        var statuses = answers.GroupBy(a => a.StatusCode).ToDictionary(g => g.Key, g => g.Count());
        // Exactly the limit was checked; every other guess was refused unchecked, the lockout's reason shown.
        Assert.Equal(10, statuses.GetValueOrDefault(HttpStatusCode.Unauthorized));
        Assert.Equal(90, statuses.GetValueOrDefault((HttpStatusCode)429));
        var locked = answers.First(a => a.StatusCode == (HttpStatusCode)429);
        Assert.Contains("Too many failed logins", await locked.Content.ReadAsStringAsync());
        Assert.NotNull(locked.Headers.RetryAfter);
        // The right one was either checked before the lockout began, or refused with the rest.
        Assert.Contains((await right).StatusCode, new[] { HttpStatusCode.SeeOther, (HttpStatusCode)429 });

        // Now the right password is refused: from this address (locked), and from another address (the user is locked).
        using (var again = ClientFrom(here, url))
        {
            var refused = await LogInAsync(again, "owner", "s3cret-pw");
            Assert.Equal((HttpStatusCode)429, refused.StatusCode);
            Assert.Contains("Too many failed logins from your address; try again in 15 minutes.", await refused.Content.ReadAsStringAsync());
            Assert.Null(refused.Headers.Location);
        }
        using (var elsewhere = ClientFrom(IPAddress.Parse("127.0.0.3"), url))
        {
            var refused = await LogInAsync(elsewhere, "owner", "s3cret-pw");
            Assert.Equal((HttpStatusCode)429, refused.StatusCode);
            Assert.Contains("Too many failed logins for this user; try again in 15 minutes.", await refused.Content.ReadAsStringAsync());
        }

        await host.TerminateAsync();
        Assert.Equal(0, await host.WaitAsync(Bound));
        Assert.Contains("status page: logins from 127.0.0.1 refused for 00:15:00 after 10 failed logins", host.Stderr);
        Assert.Contains("status page: logins of 'owner' refused for 00:15:00 after 10 failed logins", host.Stderr);
        Assert.Contains("status page: login for 'owner' from 127.0.0.3 refused: the user is locked out for", host.Stderr);
        Assert.DoesNotContain("s3cret-pw", host.Stdout + host.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Logout_and_a_password_change_end_the_login_even_for_a_copy_of_its_cookie()
    {
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("s3cret-pw")), CancellationToken.None));
        using var host = CliProcess.Start(PageEnvironment(Spool), "edge");
        var url = await WaitForPageAsync(host);

        // A copy of the login cookie (say, taken from the phone) in another client.
        async Task<(HttpClient Browser, HttpClient Copy)> LogInWithCopyAsync()
        {
            var browserJar = new CookieContainer();
            var browser = ClientFrom(IPAddress.Loopback, url, browserJar);
            Assert.Equal(HttpStatusCode.SeeOther, (await LogInAsync(browser, "owner", "s3cret-pw")).StatusCode);
            var login = browserJar.GetCookies(url)["cloudspool-login"]!;
            var jar = new CookieContainer();
            jar.Add(url, new Cookie(login.Name, login.Value));
            var copy = ClientFrom(IPAddress.Loopback, url, jar);
            Assert.Equal(HttpStatusCode.OK, (await copy.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);
            return (browser, copy);
        }

        var (browser, copy) = await LogInWithCopyAsync();
        var logout = await browser.PostAsync(new Uri("logout", UriKind.Relative), Form(("_token", await TokenOfAsync(browser, "/"))));
        Assert.Equal(HttpStatusCode.SeeOther, logout.StatusCode);
        var after = await copy.GetAsync(new Uri("/", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.Equal("/login", after.Headers.Location!.OriginalString);
        browser.Dispose();
        copy.Dispose();

        (browser, copy) = await LogInWithCopyAsync();
        Assert.True(await Spool.Runtime.Pop3Users.UpdateAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("n3w-pw")), CancellationToken.None));
        Assert.Equal(HttpStatusCode.Redirect, (await copy.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await browser.GetAsync(new Uri("/", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await copy.GetAsync(new Uri("status.json", UriKind.Relative))).StatusCode);
        // The new password logs in as before.
        using (var fresh = ClientFrom(IPAddress.Loopback, url))
            Assert.Equal(HttpStatusCode.SeeOther, (await LogInAsync(fresh, "owner", "n3w-pw")).StatusCode);
        browser.Dispose();
        copy.Dispose();

        await host.TerminateAsync();
        Assert.Equal(0, await host.WaitAsync(Bound));
        Assert.Contains("status page: the login cookie of 'owner' from 127.0.0.1 refused: its session has ended", host.Stderr);
        Assert.Contains("status page: the login cookie of 'owner' from 127.0.0.1 refused: the password changed since", host.Stderr);
    }

    [Fact]
    public async Task Over_https_with_the_edge_certificate_the_health_summary_is_503_with_state_counts_only_while_an_account_fails()
    {
        Dovecot.AddUser("hal", "pw");
        var account = PullHarness.Account(Dovecot, "hal", "hal", "pw", "home") with { Schedule = "0 0 0 1 1 ? 2099" };
        Assert.True(await Spool.Runtime.Accounts.AddAsync(account, CancellationToken.None));
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("s3cret-pw")), CancellationToken.None));
        var env = PageEnvironment(Spool, ("CLOUDSPOOL__StatusPage__Https", "true"));
        using var host = CliProcess.Start(env, "worker");
        var url = await WaitForPageAsync(host);
        Assert.Equal("https", url.Scheme);
        // The client pins the certificate by the fingerprint the host logged, as a browser user would compare it.
        var fingerprint = FingerprintLine().Match(host.Stderr).Groups[1].Value;
        using var handler = new HttpClientHandler
        {
            AllowAutoRedirect = false,
            CookieContainer = new CookieContainer(),
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) => certificate is not null && CloudSpool.Host.Edge.EdgeCertificate.Fingerprint(certificate) == fingerprint,
        };
        using var client = new HttpClient(handler) { BaseAddress = url, Timeout = Bound };

        Assert.Equal("{\"status\":\"ok\",\"storage\":\"reachable\",\"accounts\":{\"never-run\":1}}", await client.GetStringAsync(new Uri("healthz", UriKind.Relative)));
        await Dovecot.StopAsync();
        Assert.Equal(RunOutcome.Failed, (await Spool.PullAsync(account)).Outcome);
        var failing = await client.GetAsync(new Uri("healthz", UriKind.Relative));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, failing.StatusCode);
        var body = await failing.Content.ReadAsStringAsync();
        Assert.Equal("{\"status\":\"degraded\",\"storage\":\"reachable\",\"accounts\":{\"failing\":1}}", body);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri("healthz/ready", UriKind.Relative))).StatusCode);

        // Over HTTPS the login cookie is Secure as well.
        var token = await TokenOfAsync(client, "login");
        var login = await client.PostAsync(new Uri("login", UriKind.Relative), Form(("_token", token), ("user", "owner"), ("password", "s3cret-pw")));
        Assert.Equal(HttpStatusCode.SeeOther, login.StatusCode);
        var cookie = Assert.Single(login.Headers.GetValues("Set-Cookie"), c => c.StartsWith("cloudspool-login=", StringComparison.Ordinal));
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("data-state=\"failing\"", await client.GetStringAsync(new Uri("/", UriKind.Relative)));
        using (var json = JsonDocument.Parse(await client.GetStringAsync(new Uri("status.json", UriKind.Relative))))
        {
            var hal = Assert.Single(json.RootElement.GetProperty("accounts").EnumerateArray());
            Assert.Equal(("hal", "failing", 1, "Connect"), (hal.GetProperty("account").GetString(), hal.GetProperty("state").GetString(),
                hal.GetProperty("failureStreak").GetInt32(), hal.GetProperty("lastErrorKind").GetString()));
        }

        await Dovecot.RestartAsync();
        Assert.Equal(RunOutcome.Succeeded, (await Spool.PullAsync(account)).Outcome);
        Assert.Equal("{\"status\":\"ok\",\"storage\":\"reachable\",\"accounts\":{\"ok\":1}}", await client.GetStringAsync(new Uri("healthz", UriKind.Relative)));
        await host.TerminateAsync();
        Assert.Equal(0, await host.WaitAsync(Bound));
    }

    [Fact]
    public async Task A_status_page_port_in_use_is_logged_and_the_edge_keeps_serving()
    {
        using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var env = PageEnvironment(Spool, ("CLOUDSPOOL__StatusPage__Port", port.ToString(CultureInfo.InvariantCulture)));
        using var edge = CliProcess.Start(env, "edge");
        var deadline = DateTime.UtcNow + Bound;
        while (!edge.Stderr.Contains("the status page could not start on 127.0.0.1:" + port, StringComparison.Ordinal))
        {
            Assert.False(edge.HasExited, "cloudspool edge exited: " + edge.Stderr);
            Assert.True(DateTime.UtcNow < deadline, "no error logged: " + edge.Stderr);
            await Task.Delay(200);
        }
        Assert.Matches(EdgeListeningLine(), edge.Stderr);
        Assert.False(edge.HasExited);
        await edge.TerminateAsync();
        Assert.Equal(0, await edge.WaitAsync(Bound));
    }
}
