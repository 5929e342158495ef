namespace CloudSpool.Host.Cli;

/// <summary>Exit codes every command keeps (scripts and cloud cron hosts rely on them).</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
}
