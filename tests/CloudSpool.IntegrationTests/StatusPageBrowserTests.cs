using CloudSpool.Core.Edge;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Scheduling;
using CloudSpool.Edge;
using CloudSpool.TestSupport.Fixtures;
using Microsoft.Playwright;

namespace CloudSpool.IntegrationTests;

/// <summary>
/// The status page in a real browser (Debian's headless Chromium driven by Playwright) on a real `cloudspool run`
/// process, Azurite and a Dovecot upstream: log in on a phone-sized screen, watch an account turn red when its upstream
/// stops and green when it is back (the page reloads itself), and switch forwarding on and off with one tap each.
/// </summary>
public sealed class StatusPageBrowserTests : DovecotAndSpoolTest
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly float Wait = 30_000;

    /// <summary>Clicks, and clicks again if the page reloaded itself in the same instant and the tap was lost.</summary>
    private static async Task TapAsync(IPage page, string button, string expected)
    {
        for (var attempt = 1; ; attempt++)
        {
            await page.Locator(button).ClickAsync(new LocatorClickOptions { Timeout = Wait });
            try
            {
                await page.Locator(expected).WaitForAsync(new LocatorWaitForOptions { Timeout = 20_000 });
                return;
            }
            catch (TimeoutException) when (attempt < 3)
            {
                // The page reloaded itself (every second in this test) at the instant of the tap.
            }
        }
    }

    /// <summary>The colour of an account's card, as the browser renders it (checked with retries: the page reloads itself).</summary>
    private static Task ExpectColourAsync(ILocator card, string colour) =>
        Assertions.Expect(card).ToHaveCSSAsync("border-left-color", colour, new LocatorAssertionsToHaveCSSOptions { Timeout = Wait });

    private const string Green = "rgb(46, 125, 50)";
    private const string Red = "rgb(198, 40, 40)";

    [Fact]
    public async Task In_chromium_an_account_turns_red_when_its_upstream_stops_and_green_when_it_is_back_and_forwarding_switches_with_one_tap()
    {
        Assert.True(File.Exists(Chromium), "Debian's chromium is needed (tests/run installs it)");
        Dovecot.AddUser("hal", "pw");
        Dovecot.DeliverRaw("hal", TestMail.Create("Proofs for Monday"));
        var account = PullHarness.Account(Dovecot, "hal", "hal", "pw", "home") with { Schedule = "0 0 0 1 1 ? 2099" };
        Assert.True(await Spool.Runtime.Accounts.AddAsync(account, CancellationToken.None));
        Assert.Equal(RunOutcome.Succeeded, (await Spool.PullAsync(account)).Outcome);
        Assert.True(await Spool.Runtime.Pop3Users.AddAsync(new Pop3User("owner", "home", Pop3Passwords.Hash("s3cret-pw")), CancellationToken.None));

        var env = StatusPageTests.PageEnvironment(Spool);
        using var host = CliProcess.Start(env, "run");
        var url = await StatusPageTests.WaitForPageAsync(host);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
        });
        await using var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 390, Height = 844 },
            IsMobile = true,
            HasTouch = true,
        });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(Wait);

        await page.GotoAsync(url.ToString());
        Assert.EndsWith("/login", new Uri(page.Url).AbsolutePath, StringComparison.Ordinal);
        await page.FillAsync("input[name=user]", "owner");
        await page.FillAsync("input[name=password]", "s3cret-pw");
        await page.ClickAsync("button[type=submit]");

        var hal = page.Locator("[data-account='hal']");
        await page.Locator("[data-account='hal'][data-state='ok']").WaitForAsync();
        await ExpectColourAsync(hal, Green);
        await Assertions.Expect(page.Locator("body")).ToContainTextAsync("Proofs for Monday", new LocatorAssertionsToContainTextOptions { Timeout = Wait });

        // The upstream stops: after a failed pull (and the health job) the page, reloading by itself, shows it red.
        await Dovecot.StopAsync();
        Assert.Equal(RunOutcome.Failed, (await Spool.PullAsync(account)).Outcome);
        await Spool.Runtime.RunHealthAsync(CancellationToken.None);
        await page.Locator("[data-account='hal'][data-state='failing']").WaitForAsync();
        await ExpectColourAsync(hal, Red);
        await Assertions.Expect(hal).ToContainTextAsync("1 failed run (cannot connect): cannot connect to 127.0.0.1", new LocatorAssertionsToContainTextOptions { Timeout = Wait });

        await Dovecot.RestartAsync();
        Assert.Equal(RunOutcome.Succeeded, (await Spool.PullAsync(account)).Outcome);
        await page.Locator("[data-account='hal'][data-state='ok']").WaitForAsync();
        await ExpectColourAsync(hal, Green);

        // One tap on, one tap off: the switch `cloudspool forward status` reports.
        await TapAsync(page, "#switch-on", "#switch-state[data-on='true']");
        Assert.True(await StatusPageTests.ForwardIsOnAsync(env));
        await TapAsync(page, "#switch-off", "#switch-state[data-on='false']");
        Assert.False(await StatusPageTests.ForwardIsOnAsync(env));

        await host.TerminateAsync();
        Assert.Equal(0, await host.WaitAsync(TimeSpan.FromSeconds(60)));
    }
}
