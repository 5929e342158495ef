using CloudSpool.Core.Spool;

namespace CloudSpool.Host.Azurite;

/// <summary>
/// Measures the databases Azurite saves in its data folder (<c>__azurite_db_table__.json</c>,
/// <c>__azurite_db_blob__.json</c>, …): each is one LokiJS database written as one JSON string, so its file size (in
/// bytes, never fewer than the string's characters) is what counts against V8's longest string. A save in progress is
/// written to <c>FILE~</c> first and then renamed; the larger of the two counts.
/// </summary>
public sealed class AzuriteCapacityGauge(string location, long limitBytes, double warnAt, double refuseAt) : IStoreCapacityGauge
{
    /// <summary>V8's longest string (2^29 - 24 characters): a database that serializes longer cannot be saved.</summary>
    public const long V8MaxStringLength = 536_870_888;

    private const string Prefix = "__azurite_db_";

    public string Location => location;

    public StoreCapacity Measure()
    {
        var sizes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        if (Directory.Exists(location))
        {
            foreach (var file in new DirectoryInfo(location).EnumerateFiles(Prefix + "*.json*"))
            {
                var name = file.Name.TrimEnd('~');
                if (!name.EndsWith("__.json", StringComparison.Ordinal))
                    continue;
                var database = name[Prefix.Length..^"__.json".Length].Replace('_', ' ');
                sizes[database] = Math.Max(sizes.GetValueOrDefault(database), file.Length);
            }
        }
        return new StoreCapacity([.. sizes.Select(s => new StoreDatabaseUse(s.Key, s.Value, limitBytes))], warnAt, refuseAt);
    }
}
