using System.Text.RegularExpressions;
using CloudSpool.Host.Cli;

namespace CloudSpool.Infra.Tests;

/// <summary>Container Apps Job names generated from job names: valid, short enough, and never shared by two jobs.</summary>
public sealed partial class ExportNamingTests
{
    [Theory]
    [InlineData("pull:isp", "pull-isp")]
    [InlineData("pull:small-quota", "pull-small-quota")]
    [InlineData("retention", "retention")]
    public void Plain_job_names_keep_their_name(string job, string expected) =>
        Assert.Equal(expected, ScheduleExportCommand.ResourceName(job));

    [Theory]
    [InlineData("pull:a.b", "pull:a_b")]
    [InlineData("pull:a--b", "pull:a-b")]
    [InlineData("pull:a-very-long-account-name-one", "pull:a-very-long-account-name-two")]
    [InlineData("pull:9lives", "pull:9-lives")]
    public void Other_names_become_valid_and_distinct(string one, string other)
    {
        var a = ScheduleExportCommand.ResourceName(one);
        var b = ScheduleExportCommand.ResourceName(other);
        Assert.NotEqual(a, b);
        foreach (var name in new[] { a, b })
        {
            Assert.InRange(name.Length, 2, ScheduleExportCommand.MaxJobNameLength);
            Assert.Matches(ContainerAppsName(), name);
        }
    }

    /// <summary>What Azure accepts for a Container Apps Job name (before the template's prefix).</summary>
    [GeneratedRegex("^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
    private static partial Regex ContainerAppsName();
}
