using System.Diagnostics;

namespace CloudSpool.IntegrationTests.Fixtures;

/// <summary>Runs a command-line client (curl, mpop: installed by tests/run) with a time limit and captures its output bytes.</summary>
public static class ExternalTool
{
    public static async Task<(int ExitCode, byte[] Stdout, string Stderr)> RunAsync(string file, params string[] arguments)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        using var output = new MemoryStream();
        var copy = process.StandardOutput.BaseStream.CopyToAsync(output);
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException(file + " did not finish in 60 s");
        }
        await copy;
        return (process.ExitCode, output.ToArray(), await error);
    }
}
