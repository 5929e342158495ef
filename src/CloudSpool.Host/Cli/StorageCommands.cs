using System.CommandLine;
using System.Globalization;
using CloudSpool.Core.Security;
using CloudSpool.Storage.Azure;

namespace CloudSpool.Host.Cli;

/// <summary>
/// `cloudspool storage copy`: the way out of the embedded store into a storage account; `cloudspool storage compact`: the
/// messages of earlier versions (a table row each) moved into segments.
/// </summary>
public static class StorageCommands
{
    public static Command Create(CommandContext context)
    {
        var storage = new Command("storage", "The spool's storage: copy it into another storage account (the way out of the embedded Azurite), or move the rows of earlier versions into segments.");
        storage.Subcommands.Add(Copy(context));
        storage.Subcommands.Add(Compact(context));
        return storage;
    }

    private static Command Copy(CommandContext context)
    {
        var to = new Option<string>("--to")
        {
            Description = "The target: env:NAME (a variable holding its connection string; keeps the key off the command line) or the connection string itself",
            Required = true,
        };
        var restart = new Option<bool>("--restart") { Description = "Forget where an interrupted copy stopped and copy everything again" };
        var command = new Command("copy",
            "Copy the whole spool (every table of the name prefix, and every message blob, each verified by SHA-256 on the target) into another storage "
            + "account under the same name prefix. Stop run, worker and edge first. Interrupted, it continues where it stopped when run again. "
            + "Then point Storage:ConnectionString at the target.") { to, restart };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var value = parse.GetValue(to)!;
            var connectionString = value.StartsWith("env:", StringComparison.Ordinal) ? Environment.GetEnvironmentVariable(value[4..]) : value;
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                await context.Error.WriteLineAsync($"--to {value}: the variable is not set or empty").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            AzureStorage target;
            try
            {
                target = new AzureStorage(connectionString, runtime.Options.Storage.NamePrefix);
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidOperationException)
            {
                await context.Error.WriteLineAsync($"--to: not a storage connection string ({ex.Message})").ConfigureAwait(false);
                return ExitCodes.Usage;
            }
            if (target.Spool.Uri == runtime.Storage.Spool.Uri)
            {
                await context.Error.WriteLineAsync("--to: that is the spool's own storage; name another account").ConfigureAwait(false);
                return ExitCodes.Usage;
            }

            await context.Out.WriteLineAsync($"copying the spool from {runtime.StorageDescription} to {target.Spool.Uri.GetLeftPart(UriPartial.Authority)}").ConfigureAwait(false);
            var progress = new SynchronousProgress<StorageCopyProgress>(p => context.Out.WriteLine(Describe(p)));
            IReadOnlyList<StorageCopyMismatch> mismatches;
            try
            {
                mismatches = await new StorageCopy(runtime.Storage, target).RunAsync(parse.GetValue(restart), progress, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is global::Azure.RequestFailedException or InvalidDataException or IOException or HttpRequestException)
            {
                await context.Error.WriteLineAsync($"copy stopped: {ex.Message}; run the same command again to continue where it stopped").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            foreach (var m in mismatches)
                await context.Error.WriteLineAsync($"table {m.Table}: {m.SourceRows} rows in the source, {m.TargetRows} in the target: something wrote to the spool during the copy; stop run, worker and edge and run the copy again").ConfigureAwait(false);
            if (mismatches.Count > 0)
                return ExitCodes.Failed;
            await context.Out.WriteLineAsync("copy complete: every row and every blob is on the target, each blob verified by SHA-256. "
                + "Now set Storage:ConnectionString (CLOUDSPOOL__Storage__ConnectionString) to the target for run, worker and edge.").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Compact(CommandContext context)
    {
        var mailbox = new Option<string?>("--mailbox") { Description = "Compact this mailbox only (default: every mailbox that has rows of earlier versions)" };
        var command = new Command("compact",
            "Move the messages that earlier versions stored as a table row each into segments (a row per up to 49 messages): about "
            + "a tenth of the embedded store's table database per message. Keys, UIDLs, sizes and bytes stay as they are. Safe to stop "
            + "and run again; pulls and the edge may go on meanwhile, retention and forwarding wait for it.") { mailbox };
        command.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            if (runtime.Spool is not AzureSpool spool)
                throw new InvalidOperationException("the spool is not on Azure storage");
            // Retention removes messages of the same rows, and a forward run lists them to move its cursor past them: neither
            // runs beside a compaction (a listing could pass over rows while they move).
            var retention = await runtime.Leases.TryAcquireAsync(Core.Retention.RetentionRunner.Job, ct).ConfigureAwait(false);
            if (retention is null)
            {
                await context.Error.WriteLineAsync("retention is running (it holds the spool's retention lease); run compact again when it has finished").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            await using var retentionLease = retention.ConfigureAwait(false);
            var forward = await runtime.Leases.TryAcquireAsync(Core.Forward.ForwardRunner.Job, ct).ConfigureAwait(false);
            if (forward is null)
            {
                await context.Error.WriteLineAsync("a forward run is going on (it holds the spool's forward lease); run compact again when it has finished").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            await using (forward.ConfigureAwait(false))
            {
                using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, retention.Lost, forward.Lost);
                var compaction = new SpoolCompaction(runtime.Storage, spool);
                var mailboxes = parse.GetValue(mailbox) is { } one ? [one] : await compaction.MailboxesAsync(linked.Token).ToListAsync(linked.Token).ConfigureAwait(false);
                if (mailboxes.Count == 0)
                    await context.Out.WriteLineAsync("nothing to compact: every message is in a segment").ConfigureAwait(false);
                foreach (var name in mailboxes)
                {
                    var lastReport = DateTimeOffset.MinValue;
                    var progress = new SynchronousProgress<CompactionResult>(p =>
                    {
                        if (DateTimeOffset.UtcNow - lastReport < TimeSpan.FromSeconds(2))
                            return;
                        lastReport = DateTimeOffset.UtcNow;
                        context.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name}: {p.Moved} moved so far"));
                    });
                    var result = await compaction.CompactAsync(name, progress, linked.Token).ConfigureAwait(false);
                    await context.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"{name}: {result.Moved} messages moved into segments{(result.Left.Count > 0 ? $", {result.Left.Count} left as rows (still read and served)" : "")}")).ConfigureAwait(false);
                    foreach (var why in result.Left)
                        await context.Out.WriteLineAsync($"  left {SafeText.Escape(why)}").ConfigureAwait(false);
                }
                return ExitCodes.Ok;
            }
        }));
        return command;
    }

    private static string Describe(StorageCopyProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"{(p.Resumed ? "resumed; " : "")}{p.Phase}: {p.Rows} rows, {p.Blobs} blobs ({p.Bytes / 1048576.0:F1} MiB) copied and verified{(p.BlobsAlreadyThere > 0 ? $", {p.BlobsAlreadyThere} verified before" : "")}");

    /// <summary>Reports on the caller's thread, in order (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
