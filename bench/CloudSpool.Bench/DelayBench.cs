using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Bench;

/// <summary>
/// The delay benchmark: how long a message takes from its arrival in the upstream mailbox to its delivery at the
/// phone's SMTP server, with the worker pulling on a one-minute schedule and forwarding switched on. Messages arrive at
/// random moments of the pull cycle; each one's delay is measured from the moment it is dropped into Dovecot's maildir to
/// the moment aiosmtpd has stored it.
/// </summary>
public static partial class Program
{
    private const string DelayUser = "away";
    private const string Phone = "phone@carrier.test";

    /// <summary>Target: below the pull interval plus 5 s.</summary>
    private static readonly TimeSpan PullInterval = TimeSpan.FromMinutes(1);

    private static async Task<int> RunDelayAsync(Options options, CancellationToken ct)
    {
        var (dll, messages, seed, keep) = (options.CloudSpoolDll, options.Messages, options.Seed, options.KeepTemp);
        Require(File.Exists(dll), $"{dll} not found: build it (dotnet build src/CloudSpool.Host -c Release) or pass --cloudspool");
        Require(Environment.IsPrivilegedProcess, "must run as root: Dovecot switches to its mail user (bench/run takes care of it)");
        PrintMachine(null, options);

        await using var local = new BenchServers(Directory.CreateTempSubdirectory("cloudspool-delaybench-"), keep);
        await local.StartAsync(ct).ConfigureAwait(false);
        await using var smtp = await SmtpSinkServer.StartAsync().ConfigureAwait(false);
        var dovecot = local.Dovecot!;
        var password = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        dovecot.AddUser(DelayUser, password);
        var environment = new Dictionary<string, string>
        {
            ["CLOUDSPOOL_CONFIG"] = Path.Combine(local.Work.FullName, "cloudspool.json"),
            ["CLOUDSPOOL__Storage__ConnectionString"] = local.Azurite!.ConnectionString,
            ["CLOUDSPOOL__Storage__NamePrefix"] = "d" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            ["CLOUDSPOOL__Forward__Mailbox"] = DelayUser,
            ["CLOUDSPOOL__Forward__Sender"] = "cloudspool@home.test",
            ["CLOUDSPOOL__Forward__Destinations__0__Address"] = Phone,
            ["CLOUDSPOOL__Forward__Smtp__Host"] = "127.0.0.1",
            ["CLOUDSPOOL__Forward__Smtp__Port"] = smtp.Port.ToString(CultureInfo.InvariantCulture),
            ["CLOUDSPOOL__Forward__Smtp__Security"] = "none",
            ["CLOUDSPOOL_SECRET_DELAY_PW"] = password,
        };
        await File.WriteAllTextAsync(environment["CLOUDSPOOL_CONFIG"], "{}\n", ct).ConfigureAwait(false);
        await CliAsync(dll, environment, ct, "account", "add", DelayUser, "--host", dovecot.Host, "--port",
            dovecot.Pop3Port.ToString(CultureInfo.InvariantCulture), "--tls", "none", "--user", DelayUser, "--password-ref", "env:CLOUDSPOOL_SECRET_DELAY_PW",
            "--mailbox", DelayUser, "--leave", "delete", "--schedule", "0 * * * * ?").ConfigureAwait(false);
        await CliAsync(dll, environment, ct, "forward", "on").ConfigureAwait(false);

        Console.WriteLine($"setup:    worker pulling POP3 every minute (\"0 * * * * ?\", leave=delete), forwarding on to {Phone} at aiosmtpd 127.0.0.1:{smtp.Port}");
        using var worker = StartWorker(dll, environment);
        try
        {
            var random = new Random(seed);
            var delays = new List<(string Id, DateTimeOffset Arrived, double Seconds, double OffsetInCycle)>();
            for (var i = 0; i < messages; i++)
            {
                // Arrive at a random moment of a pull cycle (between 1 and 59 s after a minute starts).
                var now = DateTimeOffset.UtcNow;
                var cycleStart = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, now.Minute, 0, TimeSpan.Zero).AddMinutes(1);
                var at = cycleStart.AddSeconds(1 + random.NextDouble() * 58);
                await Task.Delay(at - now, ct).ConfigureAwait(false);
                var id = $"delay-{i + 1}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
                var raw = Encoding.ASCII.GetBytes(
                    $"From: Friend <friend@example.net>\r\nTo: {DelayUser}@home.test\r\nSubject: {id}\r\nDate: {at:R}\r\n" +
                    $"Message-ID: <{id}@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nmessage {i + 1} of the delay benchmark\r\n");
                dovecot.DeliverRaw(DelayUser, raw);
                var arrived = DateTimeOffset.UtcNow;
                var deliveredAt = await WaitForDeliveryAsync(smtp, id, worker, TimeSpan.FromMinutes(3), ct).ConfigureAwait(false);
                var seconds = (deliveredAt - arrived).TotalSeconds;
                delays.Add((id, arrived, seconds, (arrived - arrived.AddSeconds(-arrived.Second).AddMilliseconds(-arrived.Millisecond)).TotalSeconds));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"message {i + 1}: arrived upstream {arrived:HH:mm:ss.fff} ({delays[^1].OffsetInCycle:F1} s into the minute), at the phone after {seconds:F1} s"));
            }

            var sorted = delays.Select(d => d.Seconds).Order().ToList();
            var max = sorted[^1];
            var target = PullInterval.TotalSeconds + 5;
            Console.WriteLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"arrival to phone, {messages} messages: min {sorted[0]:F1} s, median {sorted[sorted.Count / 2]:F1} s, max {max:F1} s (pull interval {PullInterval.TotalSeconds:F0} s)"));
            // What CloudSpool adds to the wait for the next pull: the delay minus the time left until the next minute began.
            var added = delays.Select(d => d.Seconds - (60 - d.OffsetInCycle)).Order().ToList();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"after the pull that found it: min {added[0]:F1} s, median {added[added.Count / 2]:F1} s, max {added[^1]:F1} s (pull, store, forward, SMTP)"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"target max < pull interval + 5 s = {target:F0} s: {(max < target ? "met" : "NOT met")}"));
            var received = smtp.Received();
            Require(received.Count == messages, $"the phone received {received.Count} messages, expected {messages}");
            Console.WriteLine($"the phone received each message once ({received.Count})");
            return 0;
        }
        finally
        {
            if (!worker.HasExited)
            {
                worker.Kill(entireProcessTree: true);
                await worker.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private static Process StartWorker(string dll, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(dll);
        start.ArgumentList.Add("worker");
        foreach (var (key, value) in environment)
            start.Environment[key] = value;
        var process = Process.Start(start) ?? throw new BenchException("cloudspool worker did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>When aiosmtpd stored the message with this subject (its file's modification time).</summary>
    private static async Task<DateTimeOffset> WaitForDeliveryAsync(SmtpSinkServer smtp, string id, Process worker, TimeSpan bound, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            foreach (var folder in new[] { "new", "cur" }.Select(d => Path.Combine(smtp.Maildir, d)).Where(Directory.Exists))
            {
                foreach (var file in Directory.GetFiles(folder))
                {
                    if (File.ReadAllText(file).Contains("Subject: " + id, StringComparison.Ordinal))
                        return new DateTimeOffset(File.GetLastWriteTimeUtc(file), TimeSpan.Zero);
                }
            }
            Require(!worker.HasExited, "cloudspool worker exited");
            Require(deadline.Elapsed < bound, $"{id} did not reach the phone within {bound.TotalMinutes} minutes");
            await Task.Delay(100, ct).ConfigureAwait(false);
        }
    }

    private static async Task CliAsync(string dll, Dictionary<string, string> environment, CancellationToken ct, params string[] args)
    {
        var result = await TimedProcess.RunAsync(["dotnet", dll, .. args], environment, null, ct).ConfigureAwait(false);
        if (result.ExitCode != 0)
            throw new BenchException($"cloudspool {string.Join(' ', args)} failed with exit code {result.ExitCode}:\n{result.Stdout}{result.Stderr}");
    }
}
