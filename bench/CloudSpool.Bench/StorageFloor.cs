using System.Diagnostics;
using System.Globalization;
using Azure.Storage.Blobs;

namespace CloudSpool.Bench;

/// <summary>
/// The storage floor of the pull benchmark: what Azurite costs for the mailbox's bytes alone. The same number of bytes
/// as Dovecot serves is uploaded to a fresh Azurite as 8 MiB blobs (the size of CloudSpool's packs), one after the
/// other, by the simplest client there is: this process with the Azure SDK, no POP3, no parsing, no hashing of its own,
/// no table rows. Whatever any pull into Azurite does, it pays at least this much CPU on this machine.
/// </summary>
internal static class StorageFloor
{
    public const int BlobBytes = 8 << 20;

    /// <param name="Bytes">bytes uploaded</param>
    /// <param name="Blobs">blobs written</param>
    /// <param name="WallSeconds">from the first upload to the last answer</param>
    /// <param name="AzuriteCpuSeconds">Azurite's CPU in that time (its process tree, from /proc)</param>
    /// <param name="UploaderCpuSeconds">this process's CPU in that time (the uploads, and the bench's idle threads)</param>
    public sealed record Result(long Bytes, int Blobs, double WallSeconds, double AzuriteCpuSeconds, double UploaderCpuSeconds);

    public static async Task<Result> MeasureAsync(string connectionString, int azuritePid, long bytes, CancellationToken ct)
    {
        var container = new BlobContainerClient(connectionString, "floor");
        await container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        var buffer = new byte[BlobBytes];
        new Random(7).NextBytes(buffer); // incompressible, like the attachments; Azurite's cost does not depend on the bytes

        // One blob first, not counted: the bench's own code runs JIT-compiled, which CloudSpool's ReadyToRun image does not pay.
        await container.GetBlobClient("warm").UploadAsync(new BinaryData(buffer.AsMemory(0, 64 * 1024)), ct).ConfigureAwait(false);

        var blobs = (int)((bytes + BlobBytes - 1) / BlobBytes);
        var self = Process.GetCurrentProcess();
        self.Refresh();
        var selfStart = self.TotalProcessorTime;
        var azuriteStart = AzuriteTicks(azuritePid);
        var clock = Stopwatch.StartNew();
        var left = bytes;
        for (var i = 0; i < blobs; i++)
        {
            var length = (int)Math.Min(left, BlobBytes);
            BitConverter.TryWriteBytes(buffer, i); // every blob different, as every pack is
            await container.GetBlobClient(string.Create(CultureInfo.InvariantCulture, $"b{i:D6}")).UploadAsync(new BinaryData(buffer.AsMemory(0, length)), ct).ConfigureAwait(false);
            left -= length;
        }

        var wall = clock.Elapsed.TotalSeconds;
        var azurite = (AzuriteTicks(azuritePid) - azuriteStart) / ProcStats.TicksPerSecond;
        self.Refresh();
        return new Result(bytes, blobs, wall, azurite, (self.TotalProcessorTime - selfStart).TotalSeconds);
    }

    private static long AzuriteTicks(int pid) => ProcStats.TreeTicks(ProcStats.Snapshot(), pid);

    /// <summary>
    /// The floor's lines: its own figures, then what they leave of the machine in mpop's wall time once Dovecot has served
    /// the mailbox (its CPU in the CloudSpool runs): the CPU a pull into Azurite would have for everything else (fetching,
    /// parsing, hashing, the table rows) if the machine were kept busy all the time.
    /// </summary>
    /// <summary>The ratio of CloudSpool's wall time to the floor's that a pull must stay within.</summary>
    public const double TargetFloorRatio = 1.5;

    /// <summary>Prints the floor and CloudSpool's (median) wall time over it; false when that is above <see cref="TargetFloorRatio"/>.</summary>
    public static bool Print(Result floor, double mpopWallSeconds, double dovecotCpuSeconds, double cloudSpoolWallSeconds)
    {
        var capacity = mpopWallSeconds * Environment.ProcessorCount;
        var bytesAlone = floor.AzuriteCpuSeconds + floor.UploaderCpuSeconds;
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"storage floor (the served bytes alone, {Program.Mib(floor.Bytes):F1} MiB as {floor.Blobs} blobs of 8 MiB on a fresh Azurite, uploaded one by one by the bench; no POP3, no table rows):"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {floor.WallSeconds:F2} s wall; azurite {floor.AzuriteCpuSeconds:F1} CPU-s, uploader {floor.UploaderCpuSeconds:F1} CPU-s"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  in mpop's {mpopWallSeconds:F2} s (median) the machine has {capacity:F1} CPU-s; dovecot serving the mailbox ({dovecotCpuSeconds:F1}) and the bytes' floor ({bytesAlone:F1}) leave {capacity - dovecotCpuSeconds - bytesAlone:F1} for everything else a pull into Azurite does, at 100% busy"));
        var ratio = cloudSpoolWallSeconds / floor.WallSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cloudspool wall / storage floor wall: {ratio:F2} (median); target <= {TargetFloorRatio:F2}: {(ratio <= TargetFloorRatio ? "met" : "NOT met")}"));
        return ratio <= TargetFloorRatio;
    }
}
