namespace CloudSpool.Core.Import;

/// <summary>Where the old tool got the password from.</summary>
public enum PasswordSource
{
    /// <summary>Not in the configuration (asked for at run time, or in ~/.netrc).</summary>
    None,

    /// <summary>Written in the configuration: it is moved into a secret file and never stored.</summary>
    Inline,

    /// <summary>The output of a command (mpop passwordeval, getmail password_command): not run by CloudSpool.</summary>
    Command,
}

/// <summary>The old tool's password setting. <see cref="Value"/> is the password (Inline) or the command (Command).</summary>
public sealed record ImportedPassword(PasswordSource Source, string? Value = null, int Line = 0)
{
    public static ImportedPassword None { get; } = new(PasswordSource.None);

    /// <summary>Never the password: records print, and a password must not reach a log or a terminal.</summary>
    public override string ToString() => Source switch
    {
        PasswordSource.Inline => "inline password",
        PasswordSource.Command => "password command " + Value,
        _ => "no password",
    };
}
