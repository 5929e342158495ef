using CloudSpool.Core.Health;
using CloudSpool.Core.Spool;
using CloudSpool.Host.Azurite;

namespace CloudSpool.Core.Tests;

/// <summary>The embedded store's ceiling: levels, words, the alert subject, and the files the gauge measures.</summary>
public sealed class StoreCapacityTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("cloudspool-gauge-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static StoreCapacity Capacity(long tableBytes, long blobBytes = 0, long limit = 1000) =>
        new([new StoreDatabaseUse("blob", blobBytes, limit), new StoreDatabaseUse("table", tableBytes, limit)], 0.5, 0.8);

    [Theory]
    [InlineData(0, 0, StoreCapacityLevel.Ok)]
    [InlineData(499, 0, StoreCapacityLevel.Ok)]
    [InlineData(500, 0, StoreCapacityLevel.Warn)]
    [InlineData(0, 799, StoreCapacityLevel.Warn)]
    [InlineData(0, 800, StoreCapacityLevel.Refuse)]
    [InlineData(2000, 10, StoreCapacityLevel.Refuse)]
    public void The_fullest_database_decides_the_level(long table, long blob, StoreCapacityLevel level) =>
        Assert.Equal(level, Capacity(table, blob).Level);

    [Fact]
    public void Warnings_and_refusals_say_how_full_and_name_the_way_out()
    {
        var ok = Capacity(100);
        Assert.Null(ok.Problem);
        Assert.Equal("blob database 0.0 MiB of 0.0 MiB (0 %), table database 0.0 MiB of 0.0 MiB (10 %)", ok.Describe());

        var warn = Capacity(600).Problem!;
        Assert.Contains("filling up", warn, StringComparison.Ordinal);
        Assert.Contains("(60 %)", warn, StringComparison.Ordinal);
        Assert.Contains("from 80 % new mail is left upstream", warn, StringComparison.Ordinal);
        Assert.Contains(StoreCapacity.WayOut, warn, StringComparison.Ordinal);

        var full = Capacity(900).Problem!;
        Assert.Contains("too full to take more mail", full, StringComparison.Ordinal);
        Assert.Contains(StoreCapacity.WayOut, full, StringComparison.Ordinal);
        Assert.Contains("Storage:ConnectionString", StoreCapacity.WayOut, StringComparison.Ordinal);
        Assert.Equal(StoreCapacityLevel.Ok, new StoreCapacity([], 0.5, 0.8).Level);
    }

    [Fact]
    public void The_store_is_an_alert_subject_only_past_its_warning_share_and_only_with_a_mailbox_to_tell()
    {
        Assert.Null(HealthEvaluator.EvaluateStore(null, "alice"));
        Assert.Null(HealthEvaluator.EvaluateStore(Capacity(900), null));
        var ok = HealthEvaluator.EvaluateStore(Capacity(100), "alice")!;
        Assert.Empty(ok.Alerts);
        Assert.Equal(AccountHealthState.Ok, ok.State);
        var warn = HealthEvaluator.EvaluateStore(Capacity(600), "alice")!;
        Assert.Equal((HealthEvaluator.StoreSubject, "alice", AccountHealthState.Ok), (warn.Account, warn.Mailbox, warn.State));
        Assert.Equal([HealthEvaluator.StoreCondition], warn.Alerts);
        Assert.Equal(AccountHealthState.Failing, HealthEvaluator.EvaluateStore(Capacity(900), "alice")!.State);
    }

    [Fact]
    public void The_gauge_measures_each_azurite_database_file_and_a_save_in_progress()
    {
        var gauge = new AzuriteCapacityGauge(_folder, 1000, 0.5, 0.8);
        Assert.Empty(gauge.Measure().Databases);

        File.WriteAllBytes(Path.Combine(_folder, "__azurite_db_table__.json"), new byte[300]);
        File.WriteAllBytes(Path.Combine(_folder, "__azurite_db_table__.json~"), new byte[850]); // a save being written
        File.WriteAllBytes(Path.Combine(_folder, "__azurite_db_blob__.json"), new byte[100]);
        File.WriteAllBytes(Path.Combine(_folder, "__azurite_db_blob_extent__.json"), new byte[10]);
        File.WriteAllBytes(Path.Combine(_folder, "__blobstorage__"), new byte[5000]); // blob contents: not a database
        var capacity = gauge.Measure();

        Assert.Equal([("blob", 100L), ("blob extent", 10L), ("table", 850L)], capacity.Databases.Select(d => (d.Name, d.Bytes)));
        Assert.Equal(StoreCapacityLevel.Refuse, capacity.Level);
        Assert.Equal("table", capacity.Fullest!.Name);
        Assert.Equal(StoreCapacityLevel.Ok, new AzuriteCapacityGauge(Path.Combine(_folder, "none"), 1000, 0.5, 0.8).Measure().Level);
    }
}
