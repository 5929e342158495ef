namespace CloudSpool.Core.Leases;

/// <summary>Cross-process mutual exclusion (blob leases in Azure).</summary>
public interface ILeaseManager
{
    /// <summary>Takes the named lease, or returns null at once when another holder has it.</summary>
    Task<ILease?> TryAcquireAsync(string name, CancellationToken cancellationToken);

    /// <summary>
    /// Takes the named lease even from a live holder: its lease is broken (its renewal then fails and its
    /// <see cref="ILease.Lost"/> fires). Null when yet another holder took it in between.
    /// </summary>
    Task<ILease?> TakeOverAsync(string name, CancellationToken cancellationToken);
}
