namespace CloudSpool.Core.Scheduling;

/// <summary>
/// How one run of a job ended: a pull, forward, retention or health run alike. Run history stores it by member name,
/// so the names are part of the stored format and must not change.
/// </summary>
public enum RunOutcome
{
    Succeeded,
    Failed,
    Skipped,
}
