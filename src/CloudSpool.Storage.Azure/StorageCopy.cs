using System.Diagnostics;
using System.Security.Cryptography;
using Azure;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace CloudSpool.Storage.Azure;

/// <summary>What a copy has done so far (reported every few seconds and at the end).</summary>
/// <param name="Phase">The table or container being copied.</param>
/// <param name="Rows">Table rows written to the target in this run.</param>
/// <param name="Blobs">Blobs written and verified in this run.</param>
/// <param name="Bytes">Their bytes.</param>
/// <param name="BlobsAlreadyThere">Blobs found on the target already verified by an earlier run.</param>
/// <param name="Resumed">True when this run continued from where an earlier one stopped.</param>
public sealed record StorageCopyProgress(string Phase, long Rows, long Blobs, long Bytes, long BlobsAlreadyThere, bool Resumed);

/// <summary>A table whose row count differs between source and target after the copy.</summary>
public sealed record StorageCopyMismatch(string Table, long SourceRows, long TargetRows);

/// <summary>
/// Copies a whole spool (every table of its name prefix, and the spool container's blobs) from one storage account to
/// another: the way out of the embedded Azurite into an Azure storage account. Rows are upserted in partition batches;
/// every blob is hashed (SHA-256) as it is read from the source, read back from the target and hashed again, and only
/// then marked verified on the target (metadata <see cref="VerifiedMetadata"/>). Progress is kept on the target
/// (control table, partition <see cref="CheckpointPartition"/>), so a copy that is stopped or killed continues where it
/// was; running it again after it finished copies again, harmlessly (upserts, verified blobs skipped). Writers should be
/// stopped while it runs: a row changed behind the copy's position is only copied by a later run.
/// </summary>
public sealed class StorageCopy(AzureStorage source, AzureStorage target)
{
    /// <summary>The target's control partition that holds the copy's position.</summary>
    public const string CheckpointPartition = "storage-copy";

    /// <summary>Blob metadata set once a blob's bytes on the target are proven equal to the source's.</summary>
    public const string VerifiedMetadata = "cloudspoolsha256";

    private const string BlobsCheckpoint = "blobs";

    private AzureStorage Target => target;

    /// <summary>How often the position is saved (also every <see cref="CheckpointItems"/> items).</summary>
    public TimeSpan CheckpointInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Items (rows or blobs) between two saved positions at most.</summary>
    public int CheckpointItems { get; init; } = 50;

    /// <summary>How often progress is reported.</summary>
    public TimeSpan ProgressInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Copies everything, reporting progress; returns the tables whose row counts differ afterwards (empty: source and
    /// target hold the same rows; otherwise something wrote to the source during the copy). With
    /// <paramref name="restart"/> an earlier run's position is forgotten and everything is copied again.
    /// </summary>
    public async Task<IReadOnlyList<StorageCopyMismatch>> RunAsync(bool restart, IProgress<StorageCopyProgress> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(progress);
        await target.EnsureCreatedAsync(cancellationToken).ConfigureAwait(false);
        if (restart)
            await ForgetCheckpointsAsync(cancellationToken).ConfigureAwait(false);
        var run = new Run(this, progress);
        foreach (var (from, to) in source.Tables.Zip(target.Tables))
            await CopyTableAsync(run, from, to, cancellationToken).ConfigureAwait(false);
        await CopyBlobsAsync(run, cancellationToken).ConfigureAwait(false);
        run.Report("done", force: true);

        var mismatches = new List<StorageCopyMismatch>();
        foreach (var (from, to) in source.Tables.Zip(target.Tables))
        {
            var (sourceRows, targetRows) = (await CountAsync(from, cancellationToken).ConfigureAwait(false), await CountAsync(to, cancellationToken).ConfigureAwait(false));
            if (sourceRows != targetRows)
                mismatches.Add(new StorageCopyMismatch(from.Name, sourceRows, targetRows));
        }
        if (mismatches.Count == 0)
            await ForgetCheckpointsAsync(cancellationToken).ConfigureAwait(false);
        return mismatches;
    }

    /// <summary>The counters and clocks of one run.</summary>
    private sealed class Run(StorageCopy copy, IProgress<StorageCopyProgress> progress)
    {
        private readonly Stopwatch _reported = Stopwatch.StartNew();
        public long Rows;
        public long Blobs;
        public long Bytes;
        public long Skipped;
        public bool Resumed;
        public string Phase = "";

        public void Report(string phase, bool force = false)
        {
            Phase = phase;
            if (!force && _reported.Elapsed < copy.ProgressInterval)
                return;
            _reported.Restart();
            progress.Report(new StorageCopyProgress(phase, Rows, Blobs, Bytes, Skipped, Resumed));
        }
    }

    /// <summary>Saves a position every few items or seconds.</summary>
    private sealed class Checkpointer(StorageCopy copy, string name)
    {
        private readonly Stopwatch _saved = Stopwatch.StartNew();
        private int _items;

        public async Task AdvanceAsync(string position, bool force, CancellationToken cancellationToken)
        {
            _items++;
            if (!force && _items < copy.CheckpointItems && _saved.Elapsed < copy.CheckpointInterval)
                return;
            await copy.Target.Control.UpsertEntityAsync(new TableEntity(CheckpointPartition, name) { ["Position"] = position }, TableUpdateMode.Replace, cancellationToken).ConfigureAwait(false);
            _items = 0;
            _saved.Restart();
        }
    }

    private async Task<string?> CheckpointAsync(string name, CancellationToken cancellationToken)
    {
        var row = await target.Control.GetEntityIfExistsAsync<TableEntity>(CheckpointPartition, name, cancellationToken: cancellationToken).ConfigureAwait(false);
        return row.HasValue ? row.Value!.GetString("Position") : null;
    }

    private async Task ForgetCheckpointsAsync(CancellationToken cancellationToken)
    {
        var filter = TableClient.CreateQueryFilter($"PartitionKey eq {CheckpointPartition}");
        await foreach (var row in target.Control.QueryAsync<TableEntity>(filter, select: ["PartitionKey", "RowKey"], cancellationToken: cancellationToken).ConfigureAwait(false))
            await target.Control.DeleteEntityAsync(row.PartitionKey, row.RowKey, ETag.All, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A table's rows in key order from after the saved position, upserted in batches of one partition.</summary>
    private async Task CopyTableAsync(Run run, TableClient from, TableClient to, CancellationToken cancellationToken)
    {
        var name = from.Name;
        var position = await CheckpointAsync("table-" + name, cancellationToken).ConfigureAwait(false);
        string? filter = null;
        if (position is not null)
        {
            run.Resumed = true;
            var split = position.IndexOf('\n', StringComparison.Ordinal);
            var (pk, rk) = (position[..split], position[(split + 1)..]);
            filter = TableClient.CreateQueryFilter($"PartitionKey gt {pk} or (PartitionKey eq {pk} and RowKey gt {rk})");
        }
        var checkpoint = new Checkpointer(this, "table-" + name);
        var batch = new List<TableTransactionAction>();
        async Task FlushAsync(bool force)
        {
            if (batch.Count == 0)
                return;
            await to.SubmitTransactionAsync(batch, cancellationToken).ConfigureAwait(false);
            run.Rows += batch.Count;
            var last = batch[^1].Entity;
            batch.Clear();
            await checkpoint.AdvanceAsync(last.PartitionKey + "\n" + last.RowKey, force, cancellationToken).ConfigureAwait(false);
            run.Report(name);
        }
        await foreach (var row in from.QueryAsync<TableEntity>(filter, maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            // The target's own copy position is not the source's to overwrite (a spool copied twice over).
            if (ReferenceEquals(from, source.Control) && row.PartitionKey == CheckpointPartition)
                continue;
            if (batch.Count > 0 && (batch[0].Entity.PartitionKey != row.PartitionKey || batch.Count == 100))
                await FlushAsync(force: false).ConfigureAwait(false);
            batch.Add(new TableTransactionAction(TableTransactionActionType.UpsertReplace, Copy(row)));
        }
        await FlushAsync(force: true).ConfigureAwait(false);
    }

    /// <summary>The row's keys and properties, without the source's system properties (ETag, Timestamp).</summary>
    private static TableEntity Copy(TableEntity row)
    {
        var copy = new TableEntity(row.PartitionKey, row.RowKey);
        foreach (var (key, value) in row)
        {
            if (key is "PartitionKey" or "RowKey" or "Timestamp" or "odata.etag")
                continue;
            copy[key] = value;
        }
        return copy;
    }

    private static async Task<long> CountAsync(TableClient table, CancellationToken cancellationToken)
    {
        long count = 0;
        await foreach (var row in table.QueryAsync<TableEntity>(select: ["PartitionKey"], maxPerPage: 1000, cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (row.PartitionKey != CheckpointPartition)
                count++;
        }
        return count;
    }

    /// <summary>The spool container's blobs in name order from after the saved position, each proven on the target.</summary>
    private async Task CopyBlobsAsync(Run run, CancellationToken cancellationToken)
    {
        var position = await CheckpointAsync(BlobsCheckpoint, cancellationToken).ConfigureAwait(false);
        run.Resumed |= position is not null;
        var checkpoint = new Checkpointer(this, BlobsCheckpoint);
        await foreach (var item in source.Spool.GetBlobsAsync(BlobTraits.Metadata, BlobStates.None, prefix: null, cancellationToken).ConfigureAwait(false))
        {
            if (position is not null && string.CompareOrdinal(item.Name, position) <= 0)
                continue;
            var length = item.Properties.ContentLength ?? 0;
            var to = target.Spool.GetBlobClient(item.Name);
            if (await IsVerifiedAsync(to, length, cancellationToken).ConfigureAwait(false))
            {
                run.Skipped++;
            }
            else
            {
                await CopyBlobAsync(item, source.Spool.GetBlobClient(item.Name), to, cancellationToken).ConfigureAwait(false);
                run.Blobs++;
                run.Bytes += length;
            }
            await checkpoint.AdvanceAsync(item.Name, force: false, cancellationToken).ConfigureAwait(false);
            run.Report("spool blobs");
        }
    }

    private static async Task<bool> IsVerifiedAsync(BlobClient blob, long length, CancellationToken cancellationToken)
    {
        try
        {
            var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return properties.Value.ContentLength == length && properties.Value.Metadata.ContainsKey(VerifiedMetadata);
        }
        catch (RequestFailedException ex) when (ex.IsNotFound())
        {
            return false;
        }
    }

    /// <summary>Streams the blob across while hashing it, reads the target's copy back and hashes it, and marks it verified.</summary>
    private static async Task CopyBlobAsync(BlobItem item, BlobClient from, BlobClient to, CancellationToken cancellationToken)
    {
        string sent;
        using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            await using var read = await from.OpenReadAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            await using var hashing = new HashingStream(read, hash);
            await to.UploadAsync(hashing, new BlobUploadOptions { Metadata = item.Metadata }, cancellationToken).ConfigureAwait(false);
            if (hashing.BytesRead != (item.Properties.ContentLength ?? 0))
                throw new InvalidDataException($"blob {item.Name}: read {hashing.BytesRead} bytes from the source, which lists {item.Properties.ContentLength}");
            sent = Convert.ToHexStringLower(hash.GetHashAndReset());
        }
        string landed;
        using (var sha = SHA256.Create())
        {
            await using var back = await to.OpenReadAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            landed = Convert.ToHexStringLower(await sha.ComputeHashAsync(back, cancellationToken).ConfigureAwait(false));
        }
        if (landed != sent)
            throw new InvalidDataException($"blob {item.Name}: its SHA-256 on the target ({landed}) differs from the source's ({sent})");
        var metadata = new Dictionary<string, string>(item.Metadata) { [VerifiedMetadata] = sent };
        await to.SetMetadataAsync(metadata, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A read-only pass-through that hashes what is read and counts it.</summary>
    private sealed class HashingStream(Stream inner, IncrementalHash hash) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        private long _read;

        public long BytesRead => _read;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = inner.Read(buffer);
            hash.AppendData(buffer[..n]);
            _read += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            hash.AppendData(buffer.Span[..n]);
            _read += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
