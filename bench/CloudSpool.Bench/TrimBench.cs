using System.Diagnostics;
using System.Globalization;
using CloudSpool.Core.Forward;
using MimeKit;

namespace CloudSpool.Bench;

/// <summary>
/// The trimming benchmark: the generated benchmark mailbox trimmed for a phone (100 KB limit) on one thread,
/// messages per second and peak memory, then one 50 MB message alone. No servers: trimming is pure CPU and memory.
/// </summary>
public static class TrimBench
{
    public static async Task<int> RunAsync(int messages, int seed, CancellationToken cancellationToken)
    {
        var work = Directory.CreateTempSubdirectory("cloudspool-trim-bench-").FullName;
        try
        {
            // The mailbox on disk first, so generating it is neither timed nor in the memory figure.
            var generator = new MailboxGenerator(seed);
            long totalBytes = 0;
            for (var i = 0; i < messages; i++)
            {
                var (bytes, _) = generator.Next();
                totalBytes += bytes.Length;
                await File.WriteAllBytesAsync(Path.Combine(work, i.ToString("D6", CultureInfo.InvariantCulture)), bytes, cancellationToken).ConfigureAwait(false);
            }
            var limits = new TrimLimits(100 * 1024, []);
            Trim(Path.Combine(work, "000000"), limits); // JIT and MimeKit's tables, outside the timing
            GC.Collect();
            ResetPeak();

            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            long over = 0, output = 0;
            foreach (var file in Directory.EnumerateFiles(work).Order(StringComparer.Ordinal))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var size = Trim(file, limits);
                output += size;
                if (size > limits.MaxBytes)
                    over++;
            }
            watch.Stop();
            process.Refresh();
            var cpu = process.TotalProcessorTime - cpuBefore;
            var peakMailbox = ProcStats.StatusKb(Environment.ProcessId, "VmHWM");

            // One 50 MB message: a 50 MB text part (the worst case for decoding) and a 50 MB attachment.
            // Written straight to disk (never whole in this process), then trimmed one at a time, each with its own peak.
            var bigText = Path.Combine(work, "big-text.eml");
            WriteBigMessage(bigText, 50 << 20, attachment: false);
            var bigAttachment = Path.Combine(work, "big-attachment.eml");
            WriteBigMessage(bigAttachment, 50 << 20, attachment: true);
            var big = new List<(string Name, double Seconds, long Size, long PeakKb, long BaseKb)>();
            foreach (var (name, file) in new[] { ("50 MB text part", bigText), ("50 MB PDF attachment", bigAttachment) })
            {
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                ResetPeak();
                var baseKb = ProcStats.StatusKb(Environment.ProcessId, "VmRSS");
                var bigWatch = Stopwatch.StartNew();
                var size = Trim(file, limits);
                bigWatch.Stop();
                big.Add((name, bigWatch.Elapsed.TotalSeconds, size, ProcStats.StatusKb(Environment.ProcessId, "VmHWM"), baseKb));
            }

            Console.WriteLine($"trimming benchmark: {messages} generated messages, {totalBytes / 1048576.0:0.0} MiB, limit 100 KB, one thread");
            Console.WriteLine($"| figure | value | target |");
            Console.WriteLine($"|---|---|---|");
            Console.WriteLine($"| messages/s (wall, one thread) | {messages / watch.Elapsed.TotalSeconds:0} | >= 500 |");
            Console.WriteLine($"| CPU s for the mailbox | {cpu.TotalSeconds:0.0} (wall {watch.Elapsed.TotalSeconds:0.0}) | |");
            Console.WriteLine($"| copies over the limit | {over} | 0 |");
            Console.WriteLine($"| bytes out / in | {output / 1048576.0:0.0} / {totalBytes / 1048576.0:0.0} MiB | |");
            Console.WriteLine($"| peak RSS while trimming the mailbox | {peakMailbox / 1024.0:0} MiB | < 200 MiB |");
            foreach (var b in big)
                Console.WriteLine($"| {b.Name}: trimmed in {b.Seconds:0.00} s to {b.Size} bytes; peak RSS (before) | {b.PeakKb / 1024.0:0} MiB ({b.BaseKb / 1024.0:0}) | < 200 MiB |");
            return over == 0 ? 0 : 1;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static long Trim(string file, TrimLimits limits)
    {
        using var stream = File.OpenRead(file);
        var source = ForwardSource.Load(stream);
        var addressing = new ForwardAddressing(new MailboxAddress("CloudSpool", "cloudspool@home.example"), new MailboxAddress("", "phone@carrier.example"),
            "bench@cloudspool.invalid", Path.GetFileName(file), DateTimeOffset.UnixEpoch);
        return ForwardTrimmer.Trim(source, limits, addressing).Size;
    }

    /// <summary>Peak RSS (VmHWM) back to the current RSS (Linux: writing 5 to clear_refs), so a phase shows its own peak.</summary>
    private static void ResetPeak()
    {
        try
        {
            File.WriteAllText($"/proc/{Environment.ProcessId}/clear_refs", "5");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Older kernels: the figure then includes generation.
        }
    }

    private static void WriteBigMessage(string path, int size, bool attachment)
    {
        using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        void Line(string text) => output.Write(System.Text.Encoding.UTF8.GetBytes(text + "\r\n"));
        Line("From: Big Sender <big@example.org>");
        Line("To: alice@example.com");
        Line(attachment ? "Subject: proofs attached" : "Subject: a very long text");
        Line("Date: Sat, 28 Nov 2026 10:00:00 +0000");
        Line("Message-ID: <big-" + (attachment ? "a" : "t") + "@example.org>");
        Line("MIME-Version: 1.0");
        var random = new Random(7);
        if (!attachment)
        {
            Line("Content-Type: text/plain; charset=utf-8");
            Line("");
            while (output.Length < size)
                Line("The quick brown fox jumps over the lazy dog; déjà vu in Zürich. " + random.Next().ToString(CultureInfo.InvariantCulture));
            return;
        }
        Line("Content-Type: multipart/mixed; boundary=\"b\"");
        Line("");
        Line("--b");
        Line("Content-Type: text/plain; charset=utf-8");
        Line("");
        Line("Proofs attached, please check.");
        Line("--b");
        Line("Content-Type: application/pdf; name=\"proofs.pdf\"");
        Line("Content-Disposition: attachment; filename=\"proofs.pdf\"");
        Line("Content-Transfer-Encoding: base64");
        Line("");
        var chunk = new byte[57];
        while (output.Length < size)
        {
            random.NextBytes(chunk);
            Line(Convert.ToBase64String(chunk));
        }
        Line("--b--");
    }
}
