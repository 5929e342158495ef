using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace CloudSpool.Bench;

/// <summary>What GNU time reported for one command.</summary>
public sealed record TimedResult(int ExitCode, double WallSeconds, long PeakRssKb, double UserSeconds, double SystemSeconds, string Stdout, string Stderr);

/// <summary>Runs commands as a user would, as separate processes; optionally under GNU time (<c>/usr/bin/time -f '%e %M %U %S'</c>).</summary>
public static class TimedProcess
{
    public const string TimeBinary = "/usr/bin/time";

    /// <summary>Runs <paramref name="command"/> under GNU time; <paramref name="onStarted"/> gets the pid of the time process.</summary>
    public static async Task<TimedResult> RunTimedAsync(
        IReadOnlyList<string> command, IReadOnlyDictionary<string, string> environment, string timeFile, Action<int> onStarted, CancellationToken ct)
    {
        var (exit, stdout, stderr) = await RunAsync(
            [TimeBinary, "-f", "%e %M %U %S", "-o", timeFile, .. command], environment, onStarted, ct).ConfigureAwait(false);
        var lines = File.ReadAllLines(timeFile);
        // The figures are on the last line; a line before it says "Command exited with non-zero status N" when it failed.
        var figures = lines.Last(l => l.Length > 0).Split(' ');
        double D(int i) => double.Parse(figures[i], CultureInfo.InvariantCulture);
        return new TimedResult(exit, D(0), long.Parse(figures[1], CultureInfo.InvariantCulture), D(2), D(3), stdout, stderr);
    }

    /// <summary>Runs a command to completion and returns its exit code and output; kills its process tree if cancelled.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(
        IReadOnlyList<string> command, IReadOnlyDictionary<string, string>? environment, Action<int>? onStarted, CancellationToken ct, string? stdin = null)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        if (environment is not null)
        {
            foreach (var (key, value) in environment)
            {
                start.Environment[key] = value;
            }
        }

        using var process = new Process { StartInfo = start };
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.Start();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        onStarted?.Invoke(process.Id);
        try
        {
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            throw;
        }

        // WaitForExitAsync returns after the output streams reached EOF, so the builders are complete.
        return (process.ExitCode, stdout.ToString(), stderr.ToString());
    }

    /// <summary>Runs a command and returns its trimmed standard output, or null when it cannot be run.</summary>
    public static string? Capture(string file, params string[] args)
    {
        try
        {
            var (exit, stdout, stderr) = RunAsync([file, .. args], null, null, CancellationToken.None).GetAwaiter().GetResult();
            var text = (stdout.Length > 0 ? stdout : stderr).Trim();
            return exit == 0 || text.Length > 0 ? text : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}
