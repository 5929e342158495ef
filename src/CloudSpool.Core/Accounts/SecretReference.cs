namespace CloudSpool.Core.Accounts;

/// <summary>
/// Secrets are never stored in configuration or tables, only references to where they live:
/// <c>env:VARIABLE</c> (an environment variable, e.g. from a container secret) or
/// <c>file:/path</c> (a file readable by its owner only, e.g. a mounted secret). Which variables and files a reference
/// may name is <see cref="SecretPolicy"/>'s to say.
/// </summary>
public static class SecretReference
{
    /// <summary>Whether the text has the shape of a reference (env:NAME or file:/absolute/path); says nothing of the policy.</summary>
    public static bool IsReference(string? reference) =>
        reference is not null
        && ((reference.StartsWith("env:", StringComparison.Ordinal) && reference.Length > 4)
            || (reference.StartsWith("file:", StringComparison.Ordinal) && Path.IsPathFullyQualified(reference[5..])));
}
