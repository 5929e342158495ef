namespace CloudSpool.Core.Scheduling;

/// <summary>Names of scheduled jobs as users type them.</summary>
public static class JobNames
{
    /// <summary>The pull job of one account: <c>pull:NAME</c>.</summary>
    public static string Pull(string account) => "pull:" + account;

    /// <summary>The account of a pull job name, or null when it is not one.</summary>
    public static string? PullAccount(string job) =>
        job.StartsWith("pull:", StringComparison.Ordinal) && job.Length > 5 ? job[5..] : null;
}
