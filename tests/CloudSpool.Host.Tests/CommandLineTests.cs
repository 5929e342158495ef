using CloudSpool.Host.Cli;

namespace CloudSpool.Host.Tests;

/// <summary>Exit codes of the command line that scripts and cron hosts rely on (no storage needed for these).</summary>
public sealed class CommandLineTests
{
    private static async Task<(int Code, string Out, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.InvokeAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("frobnicate")]
    [InlineData("job", "run", "frobnicate")]
    [InlineData("account", "add")]
    [InlineData("schedule", "set", "pull:x")]
    public async Task A_wrong_command_line_is_a_usage_error_with_exit_code_2(params string[] args)
    {
        var (code, _, error) = await RunAsync(args);
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("see: cloudspool --help", error);
    }

    [Fact]
    public async Task Help_lists_every_command_of_the_contract_and_exits_0()
    {
        var (code, output, _) = await RunAsync("--help");
        Assert.Equal(ExitCodes.Ok, code);
        foreach (var command in new[] { "run", "worker", "edge", "job", "account", "user", "status", "messages", "schedule", "forward", "rules" })
            Assert.Contains("  " + command + " ", output);
    }
}
