using CloudSpool.Core.Accounts;
using CloudSpool.Core.Import;

namespace CloudSpool.Host.Import;

/// <summary>What importing one account does: the account stored, the secret file written, the seen entries recorded.</summary>
/// <param name="Source">The account as read from the old tool's configuration.</param>
/// <param name="Definition">The CloudSpool account.</param>
/// <param name="Seen">The old tool's record of fetched mail, as seen-ledger keys.</param>
/// <param name="SecretFile">The secret file the inline password moves to; null when there is none to write.</param>
/// <param name="Password">What to tell about the password (never the password).</param>
internal sealed record PlannedImport(ImportedAccount Source, AccountDefinition Definition, IReadOnlyList<ImportedSeen> Seen, string? SecretFile, string Password)
{
    /// <summary>The inline password; written only into <see cref="SecretFile"/>, never printed.</summary>
    public string? SecretValue { get; init; }

    public override string ToString() => $"{Definition.Name} from {Source.File}:{Source.Line}";
}
