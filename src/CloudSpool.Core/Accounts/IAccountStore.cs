namespace CloudSpool.Core.Accounts;

/// <summary>Where account definitions live (control state in storage, so every worker sees the same list).</summary>
public interface IAccountStore
{
    Task<IReadOnlyList<AccountDefinition>> ListAsync(CancellationToken cancellationToken);
    Task<AccountDefinition?> GetAsync(string name, CancellationToken cancellationToken);

    /// <summary>Adds a new account; false when one with that name exists.</summary>
    Task<bool> AddAsync(AccountDefinition account, CancellationToken cancellationToken);

    /// <summary>Replaces an existing account's definition.</summary>
    Task UpdateAsync(AccountDefinition account, CancellationToken cancellationToken);

    /// <summary>Removes the account definition (its mail stays in the spool); false when unknown.</summary>
    Task<bool> RemoveAsync(string name, CancellationToken cancellationToken);
}
