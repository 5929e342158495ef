using System.Diagnostics;
using System.Text;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>The real `cloudspool` executable run as a child process, as users, scripts and cron hosts run it.</summary>
public sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private CliProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_out) _out.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_err) _err.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    public string Stdout { get { lock (_out) return _out.ToString(); } }
    public string Stderr { get { lock (_err) return _err.ToString(); } }

    /// <summary>The cloudspool.dll run (default: the one built beside the tests; the soak bench sets its published copy).</summary>
    public static string Executable { get; set; } = Path.Combine(AppContext.BaseDirectory, "cloudspool.dll");

    public static CliProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var dll = Executable;
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var a in args)
            start.ArgumentList.Add(a);
        foreach (var (k, v) in environment)
            start.Environment[k] = v;
        return new CliProcess(Process.Start(start)!);
    }

    /// <summary>Runs to completion (bounded) and returns the exit code.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var p = Start(environment, args);
        var code = await p.WaitAsync(TimeSpan.FromSeconds(120));
        return (code, p.Stdout, p.Stderr);
    }

    /// <summary>Runs to completion (bounded) with <paramref name="stdin"/> on its standard input (how a password reaches it).</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunWithInputAsync(IReadOnlyDictionary<string, string> environment, string stdin, params string[] args)
    {
        using var p = Start(environment, args);
        await p._process.StandardInput.WriteAsync(stdin);
        p._process.StandardInput.Close();
        var code = await p.WaitAsync(TimeSpan.FromSeconds(120));
        return (code, p.Stdout, p.Stderr);
    }

    public async Task<int> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cloudspool did not exit within {timeout}; stdout: {Stdout}; stderr: {Stderr}");
        }
        _process.WaitForExit(); // drain the output readers
        return _process.ExitCode;
    }

    /// <summary>The port from a `cloudspool edge` (or `run`) log line "POP3 edge listening on 127.0.0.1:PORT".</summary>
    public async Task<int> WaitForEdgePortAsync(TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            var match = System.Text.RegularExpressions.Regex.Match(Stderr, @"POP3 edge listening on 127\.0\.0\.1:(\d+)");
            if (match.Success)
                return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            // Plain exceptions, not xunit's asserts: the bench compiles this file too.
            if (HasExited)
                throw new InvalidOperationException("cloudspool edge exited: " + Stderr);
            if (DateTime.UtcNow >= deadline)
                throw new TimeoutException("cloudspool edge did not listen: " + Stderr);
            await Task.Delay(200);
        }
    }

    /// <summary>kill -9: no chance to clean up, release leases or finish a write.</summary>
    public void KillHard() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM: the graceful stop a service manager sends.</summary>
    /// <summary>Sends a signal (STOP, CONT, ...) to the process, as a sleeping or suspended host would experience.</summary>
    public async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    public async Task TerminateAsync()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
