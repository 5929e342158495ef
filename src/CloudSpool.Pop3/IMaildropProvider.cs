namespace CloudSpool.Pop3;

/// <summary>
/// Opens the maildrop of an authenticated identity when a session enters the TRANSACTION state
/// (RFC 1939 section 4: the server acquires an exclusive-access lock on the maildrop).
/// </summary>
/// <remarks>
/// Implementations must be thread-safe. An exception is answered like <see cref="Pop3MaildropResult.Unavailable"/>.
/// </remarks>
public interface IMaildropProvider
{
    /// <summary>Opens the maildrop for one session; the session disposes it when it ends.</summary>
    ValueTask<Pop3MaildropResult> OpenAsync(Pop3Identity identity, CancellationToken cancellationToken);
}

/// <summary>What opening a maildrop came to.</summary>
public enum Pop3MaildropStatus
{
    /// <summary>Opened: <see cref="Pop3MaildropResult.Maildrop"/> is set.</summary>
    Opened,

    /// <summary>Another session holds it: answered with -ERR [IN-USE] (RFC 2449 section 8.1.2).</summary>
    InUse,

    /// <summary>It cannot be opened now: answered with -ERR [SYS/TEMP] (RFC 3206).</summary>
    Unavailable,

    /// <summary>It cannot be opened until someone fixes something (a disabled or broken mailbox): answered with -ERR [SYS/PERM] (RFC 3206 section 4).</summary>
    PermanentlyUnavailable,
}

/// <summary>The answer of an <see cref="IMaildropProvider"/>.</summary>
public sealed class Pop3MaildropResult
{
    private Pop3MaildropResult(Pop3MaildropStatus status, IMaildrop? maildrop, string? reason)
    {
        Status = status;
        Maildrop = maildrop;
        Reason = reason;
    }

    /// <summary>Another session of the same identity holds the maildrop.</summary>
    public static Pop3MaildropResult InUse { get; } = new(Pop3MaildropStatus.InUse, null, null);

    /// <summary>What opening came to.</summary>
    public Pop3MaildropStatus Status { get; }

    /// <summary>The open maildrop when <see cref="Status"/> is <see cref="Pop3MaildropStatus.Opened"/>.</summary>
    public IMaildrop? Maildrop { get; }

    /// <summary>Why it is unavailable, for the log (never sent to the client).</summary>
    public string? Reason { get; }

    /// <summary>The maildrop is open and now belongs to the session.</summary>
    public static Pop3MaildropResult Opened(IMaildrop maildrop)
    {
        ArgumentNullException.ThrowIfNull(maildrop);
        return new(Pop3MaildropStatus.Opened, maildrop, null);
    }

    /// <summary>The maildrop cannot be opened now.</summary>
    public static Pop3MaildropResult Unavailable(string? reason = null) => new(Pop3MaildropStatus.Unavailable, null, reason);

    /// <summary>The maildrop cannot be opened and retrying will not help until the cause is fixed.</summary>
    public static Pop3MaildropResult PermanentlyUnavailable(string? reason = null) => new(Pop3MaildropStatus.PermanentlyUnavailable, null, reason);
}
