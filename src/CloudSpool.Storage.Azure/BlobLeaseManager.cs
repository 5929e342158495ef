using Azure;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using CloudSpool.Core.Leases;
using Microsoft.Extensions.Logging;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Cross-process mutual exclusion with blob leases, the mechanism Azure Functions uses for its timer
/// singletons. A lease lasts <see cref="Duration"/> and is renewed at a third of that while held; a
/// crashed holder's lease simply expires, so nothing stays blocked forever.
/// </summary>
public sealed class BlobLeaseManager(AzureStorage storage, ILogger<BlobLeaseManager> logger) : ILeaseManager
{
    /// <summary>Lease duration (Azure allows 15-60 seconds).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);

    public async Task<ILease?> TryAcquireAsync(string name, CancellationToken cancellationToken)
    {
        var blob = storage.Leases.GetBlobClient(name);
        var client = blob.GetBlobLeaseClient();
        // The lease blob exists after a name's first use: acquiring straight away is one request, not two.
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await client.AcquireAsync(Duration, cancellationToken: cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (RequestFailedException ex) when (ex.IsConflict())
            {
                return null; // LeaseAlreadyPresent: another holder is working.
            }
            catch (RequestFailedException ex) when (ex.Status == 404 && attempt == 0)
            {
                try
                {
                    await blob.UploadAsync(BinaryData.Empty, new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken).ConfigureAwait(false);
                }
                catch (RequestFailedException created) when (created.IsConflict() || created.IsPreconditionFailed())
                {
                    // Created by another process in between (possibly leased right now): the acquire below tells.
                }
            }
        }
        return new BlobLease(client, name, Duration, logger);
    }

    public async Task<ILease?> TakeOverAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            // A break period of zero ends the holder's lease at once; its next renewal fails.
            await storage.Leases.GetBlobClient(name).GetBlobLeaseClient().BreakAsync(TimeSpan.Zero, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException ex) when (ex.IsConflict() || ex.IsNotFound())
        {
            // No lease to break (released in between) or no blob yet: acquiring tells.
        }
        return await TryAcquireAsync(name, cancellationToken).ConfigureAwait(false);
    }

    private sealed class BlobLease : ILease
    {
        private readonly BlobLeaseClient _client;
        private readonly string _name;
        private readonly ILogger _logger;
        private readonly CancellationTokenSource _lost = new();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _renewal;

        public BlobLease(BlobLeaseClient client, string name, TimeSpan duration, ILogger logger)
        {
            _client = client;
            _name = name;
            _logger = logger;
            _renewal = RenewAsync(duration / 3);
        }

        public CancellationToken Lost => _lost.Token;

        private async Task RenewAsync(TimeSpan every)
        {
            using var timer = new PeriodicTimer(every);
            try
            {
                while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
                {
                    try
                    {
                        await _client.RenewAsync(cancellationToken: _stop.Token).ConfigureAwait(false);
                    }
                    catch (RequestFailedException ex)
                    {
                        StorageLog.LeaseNotRenewed(_logger, _name, ex.Status, ex.ErrorCode);
                        await _lost.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                // Disposed: renewal ends.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _renewal.ConfigureAwait(false);
            if (!_lost.IsCancellationRequested)
            {
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    await _client.ReleaseAsync(cancellationToken: timeout.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is RequestFailedException or OperationCanceledException)
                {
                    // The lease expires by itself within its duration; the next run waits at most that long.
                    StorageLog.LeaseNotReleased(_logger, _name, ex.Message);
                }
            }
            _lost.Dispose();
            _stop.Dispose();
        }
    }
}
