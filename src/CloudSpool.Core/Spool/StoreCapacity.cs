using System.Globalization;

namespace CloudSpool.Core.Spool;

/// <summary>One database of the embedded store, measured against the largest size it can save.</summary>
/// <param name="Name">What it holds ("table", "blob").</param>
/// <param name="Bytes">Its size now.</param>
/// <param name="LimitBytes">The size at which saving it fails (and the store aborts).</param>
public sealed record StoreDatabaseUse(string Name, long Bytes, long LimitBytes)
{
    /// <summary>The share of the limit in use (1.0: at the limit).</summary>
    public double Share => LimitBytes <= 0 ? 0 : (double)Bytes / LimitBytes;
}

/// <summary>How close the embedded store is to its ceiling.</summary>
public enum StoreCapacityLevel
{
    /// <summary>Room to spare.</summary>
    Ok,

    /// <summary>Past the warning share: status, the status page and one alert say so; ingest goes on.</summary>
    Warn,

    /// <summary>Past the refusal share: new mail is left upstream until the spool moves to a storage account.</summary>
    Refuse,
}

/// <summary>
/// The embedded store's databases against their ceiling. Azurite keeps each service's metadata in one database that it
/// saves as one JSON string; V8 cannot make a string longer than about 512 MiB, and a save past that aborts the whole
/// process and loses what was acknowledged since the last good save. So ingest stops well before: the spool stays
/// readable, and new mail stays upstream (no leave policy deletes what was not stored).
/// </summary>
/// <param name="Databases">Every database measured.</param>
/// <param name="WarnAt">The share from which it warns (0.5: half the limit).</param>
/// <param name="RefuseAt">The share from which new ingest is refused.</param>
public sealed record StoreCapacity(IReadOnlyList<StoreDatabaseUse> Databases, double WarnAt, double RefuseAt)
{
    /// <summary>The database nearest its limit; null when none was measured.</summary>
    public StoreDatabaseUse? Fullest => Databases.Count == 0 ? null : Databases.MaxBy(d => d.Share);

    public StoreCapacityLevel Level => Fullest?.Share switch
    {
        { } share when share >= RefuseAt => StoreCapacityLevel.Refuse,
        { } share when share >= WarnAt => StoreCapacityLevel.Warn,
        _ => StoreCapacityLevel.Ok,
    };

    /// <summary>"table database 12.3 MiB of 512.0 MiB (2 %), blob database 0.1 MiB of 512.0 MiB (0 %)".</summary>
    public string Describe() => Databases.Count == 0
        ? "no database saved yet"
        : string.Join(", ", Databases.Select(d => string.Create(CultureInfo.InvariantCulture,
            $"{d.Name} database {d.Bytes / 1048576.0:F1} MiB of {d.LimitBytes / 1048576.0:F1} MiB ({100 * d.Share:F0} %)")));

    /// <summary>What is wrong and the way out, in plain words; null at <see cref="StoreCapacityLevel.Ok"/>.</summary>
    public string? Problem => Level switch
    {
        StoreCapacityLevel.Refuse => string.Create(CultureInfo.InvariantCulture,
            $"the embedded store (Azurite) is too full to take more mail: {Describe()}; new mail is left upstream from {100 * RefuseAt:F0} %, "
            + $"before Azurite's save fails and loses data. {WayOut}"),
        StoreCapacityLevel.Warn => string.Create(CultureInfo.InvariantCulture,
            $"the embedded store (Azurite) is filling up: {Describe()}; from {100 * RefuseAt:F0} % new mail is left upstream. {WayOut}"),
        _ => null,
    };

    /// <summary>The way out, named in every warning.</summary>
    public const string WayOut =
        "Move the spool to an Azure storage account: `cloudspool storage copy --to env:VAR`, then set Storage:ConnectionString to it "
        + "(see \"The embedded store's ceiling\" in docs/design.md).";
}

/// <summary>Measures the embedded store's databases; a storage account has no such ceiling and no gauge.</summary>
public interface IStoreCapacityGauge
{
    StoreCapacity Measure();
}
