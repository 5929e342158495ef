using System.Text.RegularExpressions;
using CloudSpool.Core.Security;

namespace CloudSpool.Core.Accounts;

/// <summary>
/// Which secrets a reference may name. A reference is data (an account row in storage, a configuration value), and the
/// secret it resolves to is sent to a server the same data names: without a rule, whoever can write an account row could
/// make the worker send any file or variable it can read (<c>file:/proc/self/environ</c>, an SSH key, the storage
/// connection string) to a host of their choice. So <c>file:</c> references must name a file inside
/// <see cref="Directory"/> (its real path, after symbolic links and '..'), a regular file of this user that nobody else
/// can read, in a directory of this user that nobody else can write; <c>env:</c> references must name a variable whose
/// name starts with <see cref="EnvironmentPrefix"/>. Both are checked when a reference is stored
/// (<see cref="Check"/>) and again when it is used (<see cref="Resolve"/>).
/// </summary>
public sealed partial class SecretPolicy
{
    /// <summary>The default prefix of variables a reference may name.</summary>
    public const string DefaultEnvironmentPrefix = "CLOUDSPOOL_SECRET_";

    /// <summary>A secret file larger than this is not a password.</summary>
    public const int MaxFileBytes = 64 * 1024;

    /// <summary>CloudSpool's configuration variables (the storage connection string among them) are never a secret reference.</summary>
    private const string ConfigurationVariables = "CLOUDSPOOL__";

    public SecretPolicy(string directory, string environmentPrefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentException.ThrowIfNullOrEmpty(environmentPrefix);
        Directory = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        EnvironmentPrefix = environmentPrefix;
    }

    /// <summary>The directory <c>file:</c> references must lie in (Secrets:Directory).</summary>
    public string Directory { get; }

    /// <summary>The prefix of the variables <c>env:</c> references may name (Secrets:EnvironmentPrefix).</summary>
    public string EnvironmentPrefix { get; }

    /// <summary>The default directory: <c>$XDG_CONFIG_HOME/cloudspool/secrets</c>, i.e. <c>~/.config/cloudspool/secrets</c>.</summary>
    public static string DefaultDirectory =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "cloudspool", "secrets");

    /// <summary>The defaults: <see cref="DefaultDirectory"/> and <see cref="DefaultEnvironmentPrefix"/>.</summary>
    public static SecretPolicy Default => new(DefaultDirectory, DefaultEnvironmentPrefix);

    [GeneratedRegex("^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*_$")]
    private static partial Regex PrefixPattern();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex VariablePattern();

    /// <summary>
    /// Whether a prefix is acceptable: upper-case letters, digits and single '_', ending in '_', at least 4 characters,
    /// and not one that would let references name CloudSpool's own configuration variables (CLOUDSPOOL__...).
    /// </summary>
    public static bool IsValidPrefix(string? prefix) =>
        prefix is { Length: >= 4 } && PrefixPattern().IsMatch(prefix) && !ConfigurationVariables.StartsWith(prefix, StringComparison.Ordinal);

    /// <summary>
    /// The check made when a reference is stored: its shape, and the rule for what it names (the file, when it exists
    /// already, by its real path). Null when allowed; else the reason, explaining the rule and what to do.
    /// </summary>
    public string? Check(string? reference)
    {
        if (!SecretReference.IsReference(reference))
            return $"'{SafeText.Escape(reference)}' is not a secret reference: expected env:{EnvironmentPrefix}NAME or file:{Directory}/NAME, never the password itself";
        if (reference!.StartsWith("env:", StringComparison.Ordinal))
            return CheckVariable(reference, reference[4..]);
        var path = reference[5..];
        if (OutsideLexically(path) is { } lexical)
            return lexical;
        var real = PrivateFiles.RealPath(path);
        return real is not null && !Inside(real, PrivateFiles.RealPath(Directory) ?? Directory)
            ? FileRule(reference, $"{path} resolves to {real}, outside it")
            : null;
    }

    /// <summary>The variable an allowed <c>env:</c> reference names; null for a file reference. Throws when not allowed.</summary>
    public string? VariableOf(string reference)
    {
        if (Check(reference) is { } problem)
            throw new SecretUnavailableException(problem);
        return reference.StartsWith("env:", StringComparison.Ordinal) ? reference[4..] : null;
    }

    /// <summary>
    /// Resolves the secret, checking the rule again first (a reference stored before the rule, or under another
    /// configuration, is refused with the rule and how to move the secret). Throws <see cref="SecretUnavailableException"/>
    /// with a plain reason.
    /// </summary>
    public string Resolve(string reference)
    {
        ArgumentNullException.ThrowIfNull(reference);
        if (Check(reference) is { } problem)
            throw new SecretUnavailableException(problem);
        if (reference.StartsWith("env:", StringComparison.Ordinal))
        {
            var name = reference[4..];
            return Environment.GetEnvironmentVariable(name)
                ?? throw new SecretUnavailableException($"the environment variable {name} named by '{reference}' is not set");
        }
        return ReadFile(reference, reference[5..]);
    }

    private string? CheckVariable(string reference, string name)
    {
        if (VariablePattern().IsMatch(name) && name.Length > EnvironmentPrefix.Length
            && name.StartsWith(EnvironmentPrefix, StringComparison.Ordinal) && !name.StartsWith(ConfigurationVariables, StringComparison.Ordinal))
            return null;
        var suggestion = EnvironmentPrefix + SuggestedName(name);
        return $"'{SafeText.Escape(reference)}' is not allowed: an env: reference may name only a variable whose name starts with {EnvironmentPrefix} "
            + "(Secrets:EnvironmentPrefix), so that a stored account cannot make CloudSpool send any other variable to a server. "
            + $"Put the password in such a variable, e.g. export {suggestion}='...', and use env:{suggestion} "
            + "(for an account already stored: `cloudspool account remove NAME`, then `account add` it again with the new reference)";
    }

    private static string SuggestedName(string name)
    {
        var cleaned = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToUpperInvariant(c) : '_').ToArray()).Trim('_');
        return cleaned.Length == 0 ? "PASSWORD" : cleaned;
    }

    private string? OutsideLexically(string path)
    {
        var full = Path.GetFullPath(path);
        return Inside(full, Directory) ? null : FileRule("file:" + path, full == path ? $"{path} is outside it" : $"{path} is {full}, outside it");
    }

    private static bool Inside(string path, string directory) =>
        path.StartsWith(Path.TrimEndingDirectorySeparator(directory) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private string FileRule(string reference, string where) =>
        $"'{SafeText.Escape(reference)}' is not allowed: a file: reference must name a file inside the secrets directory {Directory} "
        + $"(Secrets:Directory), so that a stored account cannot make CloudSpool send any other file to a server; {SafeText.Escape(where)}. "
        + $"Move the secret there (install -d -m 700 {Directory}; install -m 600 FILE {Directory}/NAME) and use file:{Directory}/NAME "
        + "(for an account already stored: `cloudspool account remove NAME`, then `account add` it again with the new reference)";

    /// <summary>Reads a secret file after checking the directory, every directory between, and the file as opened.</summary>
    private string ReadFile(string reference, string path)
    {
        var real = PrivateFiles.RealPath(path) ?? throw new SecretUnavailableException($"the secret file {path} does not exist");
        if (!PrivateFiles.Checked)
            return File.ReadAllText(real).TrimEnd('\r', '\n');
        var directory = PrivateFiles.RealPath(Directory)
            ?? throw new SecretUnavailableException($"the secrets directory {Directory} (Secrets:Directory) does not exist: create it with install -d -m 700 {Directory} and put the secret file there");
        if (!Inside(real, directory))
            throw new SecretUnavailableException(FileRule(reference, $"{path} resolves to {real}, outside it"));
        var me = PrivateFiles.EffectiveUserId;
        // The secrets directory and every directory below it down to the file: this user's, writable by nobody else, so
        // nobody else can swap a name on the way.
        for (var d = Path.GetDirectoryName(real); d is not null && d.Length >= directory.Length; d = Path.GetDirectoryName(d))
        {
            var s = PrivateFiles.Status(d, followLinks: false) ?? throw new SecretUnavailableException($"the secret file's directory {d} vanished");
            if (s.Owner != me || PrivateFiles.WritableByGroupOrOthers(s.Mode))
                throw new SecretUnavailableException($"the secrets directory {d} must belong to this user (id {me}) and be writable by nobody else; it belongs to user id {s.Owner}, mode {s.OctalMode}: chown it, then chmod 700 {d}");
        }
        // Only a regular file is opened (a FIFO would block the open, a device never end); what was opened is checked again.
        if (PrivateFiles.Status(real, followLinks: false) is not { Kind: FileKind.File })
            throw new SecretUnavailableException($"the secret file {path} is not a regular file");
        FileStream file;
        try
        {
            file = new FileStream(real, System.IO.FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new SecretUnavailableException($"the secret file {path} cannot be read: {ex.Message}");
        }
        using var opened = file;
        var status = PrivateFiles.Status(file.SafeFileHandle);
        if (status.Kind != FileKind.File)
            throw new SecretUnavailableException($"the secret file {path} is not a regular file");
        if (status.Owner != me)
            throw new SecretUnavailableException($"the secret file {path} belongs to user id {status.Owner}, not to this user (id {me}): chown it");
        if (PrivateFiles.OpenToGroupOrOthers(status.Mode))
            throw new SecretUnavailableException($"the secret file {path} is readable by group or others (mode {status.OctalMode}): chmod 600 it");
        if (file.Length > MaxFileBytes)
            throw new SecretUnavailableException($"the secret file {path} is larger than {MaxFileBytes} bytes: not a password");
        using var reader = new StreamReader(file);
        return reader.ReadToEnd().TrimEnd('\r', '\n');
    }
}
