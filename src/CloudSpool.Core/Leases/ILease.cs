namespace CloudSpool.Core.Leases;

/// <summary>A held lease, renewed in the background until disposed.</summary>
public interface ILease : IAsyncDisposable
{
    /// <summary>Cancelled when the lease could not be renewed: the holder must stop work.</summary>
    CancellationToken Lost { get; }
}
