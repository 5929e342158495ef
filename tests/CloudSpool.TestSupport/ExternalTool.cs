using System.Diagnostics;

namespace CloudSpool.TestSupport;

/// <summary>Runs a command-line client (curl, mpop: installed by tests/run) with a time limit and captures its output bytes.</summary>
public static class ExternalTool
{
    public static bool IsInstalled(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, name)));

    public static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunAsync(string file, params string[] arguments)
    {
        // A missing client is a failure, not a skip: tests/run installs every client the suite needs.
        if (!IsInstalled(file))
            throw new InvalidOperationException(file + " is not installed: run tests/run, which installs it (apt-get install " + file + ")");
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // What it printed before it stopped is where to look: the output closes once the process tree is gone.
            process.Kill(entireProcessTree: true);
            var closed = Task.WhenAll(copy, stderr);
            var printed = await Task.WhenAny(closed, Task.Delay(TimeSpan.FromSeconds(5))) == closed && closed.IsCompletedSuccessfully;
            throw new TimeoutException(file + " did not finish in 60 s" + (printed
                ? "; it printed:\n" + System.Text.Encoding.UTF8.GetString(stdout.ToArray()) + stderr.Result
                : " and its output did not close"));
        }
        await copy;
        return (process.ExitCode, stdout.ToArray(), await stderr);
    }
}
