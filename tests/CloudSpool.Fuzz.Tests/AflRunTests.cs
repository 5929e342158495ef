using System.Text;
using System.Text.RegularExpressions;
using CloudSpool.TestSupport;
using Xunit.Abstractions;

namespace CloudSpool.Fuzz.Tests;

/// <summary>
/// A short AFL++ run of each target on the SharpFuzz-instrumented build (tests/CloudSpool.Fuzz/run): it must execute
/// inputs and find no crash (a broken invariant) and no hang. One class, so the runs take turns on the machine.
/// </summary>
public sealed partial class AflRunTests(ITestOutputHelper output)
{
    private const int Seconds = 15;

    [Theory]
    [InlineData("pop3")]
    [InlineData("ingest")]
    [InlineData("trim")]
    public async Task A_short_afl_run_finds_no_crash_and_no_hang(string target)
    {
        var work = Path.Combine(Path.GetTempPath(), "cloudspool-fuzz-" + target + "-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            // A generous -t: the 1-second bound per input is checked by the replay tests, not on a loaded machine here.
            var (exitCode, stdout, stderr) = await ExternalTool.RunAsync("bash", Path.Combine(FuzzPaths.Project, "run"), target,
                "--seconds", Seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "--timeout", "5000",
                "--out", work, "--build-dir", FuzzPaths.Build);
            var text = Encoding.UTF8.GetString(stdout);
            output.WriteLine(text + stderr);
            var summary = Summary().Match(text);
            Assert.True(summary.Success, "no summary line from the run script (exit " + exitCode + "): " + text + stderr);
            Assert.True(long.Parse(summary.Groups["execs"].Value, System.Globalization.CultureInfo.InvariantCulture) > 100,
                "AFL ran too few inputs: " + summary.Value);
            Assert.Equal("0", summary.Groups["crashes"].Value);
            Assert.Equal("0", summary.Groups["hangs"].Value);
            Assert.Equal(0, exitCode);
        }
        finally
        {
            if (Directory.Exists(work))
                Directory.Delete(work, recursive: true);
        }
    }

    [GeneratedRegex(@"fuzz \w+: (?<execs>\d+) execs, (?<crashes>\d+) crashes, (?<hangs>\d+) hangs")]
    private static partial Regex Summary();
}
