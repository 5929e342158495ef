namespace CloudSpool.Core.Import;

/// <summary>
/// A configuration or state file that cannot be imported as it is: a syntax error, an unknown keyword, a protocol
/// CloudSpool does not speak, a missing state file. The message names the file and the line; nothing is created.
/// </summary>
public sealed class ImportException(string file, int line, string reason)
    : Exception(line > 0 ? $"{file}:{line}: {reason}" : $"{file}: {reason}")
{
    public string File { get; } = file;

    /// <summary>The line (from 1), or 0 when the problem is the file as a whole.</summary>
    public int Line { get; } = line;

    public string Reason { get; } = reason;
}
