namespace CloudSpool.Core.Accounts;

/// <summary>
/// Secrets are never stored in configuration or tables, only references to where they live:
/// <c>env:VARIABLE</c> (an environment variable, e.g. from a container secret) or
/// <c>file:/path</c> (a file readable by its owner only, e.g. a mounted secret).
/// </summary>
public static class SecretReference
{
    public static bool IsReference(string? reference) =>
        reference is not null
        && ((reference.StartsWith("env:", StringComparison.Ordinal) && reference.Length > 4)
            || (reference.StartsWith("file:", StringComparison.Ordinal) && Path.IsPathFullyQualified(reference[5..])));

    /// <summary>Resolves the secret. Throws <see cref="SecretUnavailableException"/> with a plain reason.</summary>
    public static string Resolve(string reference)
    {
        if (reference.StartsWith("env:", StringComparison.Ordinal))
        {
            var name = reference[4..];
            return Environment.GetEnvironmentVariable(name)
                ?? throw new SecretUnavailableException($"the environment variable {name} named by '{reference}' is not set");
        }
        if (reference.StartsWith("file:", StringComparison.Ordinal))
        {
            var path = reference[5..];
            if (!File.Exists(path))
                throw new SecretUnavailableException($"the secret file {path} does not exist");
            if (!OperatingSystem.IsWindows())
            {
                var mode = File.GetUnixFileMode(path);
                if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
                    throw new SecretUnavailableException($"the secret file {path} is readable by group or others (mode {Convert.ToString((int)mode, 8)}): chmod 600 it");
            }
            return File.ReadAllText(path).TrimEnd('\r', '\n');
        }
        throw new SecretUnavailableException($"'{reference}' is not a secret reference: expected env:VARIABLE or file:/path");
    }
}

/// <summary>A secret reference could not be resolved.</summary>
public sealed class SecretUnavailableException(string message) : Exception(message);
