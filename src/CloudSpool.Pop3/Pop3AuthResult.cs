namespace CloudSpool.Pop3;

/// <summary>What an authentication attempt came to.</summary>
public enum Pop3AuthStatus
{
    /// <summary>The credentials are good: <see cref="Pop3AuthResult.Identity"/> is set.</summary>
    Succeeded,

    /// <summary>Wrong user name, password or digest: answered with -ERR [AUTH] after a delay (RFC 3206).</summary>
    Failed,

    /// <summary>The check could not be made now: answered with -ERR [SYS/TEMP] (RFC 3206).</summary>
    TemporaryFailure,
}

/// <summary>The answer of an <see cref="IPop3Authenticator"/>.</summary>
public sealed class Pop3AuthResult
{
    private Pop3AuthResult(Pop3AuthStatus status, Pop3Identity? identity, string? reason)
    {
        Status = status;
        Identity = identity;
        Reason = reason;
    }

    /// <summary>Wrong credentials.</summary>
    public static Pop3AuthResult Failed { get; } = new(Pop3AuthStatus.Failed, null, null);

    /// <summary>What the attempt came to.</summary>
    public Pop3AuthStatus Status { get; }

    /// <summary>The authenticated identity when <see cref="Status"/> is <see cref="Pop3AuthStatus.Succeeded"/>.</summary>
    public Pop3Identity? Identity { get; }

    /// <summary>Why a temporary failure happened, for the log (never sent to the client).</summary>
    public string? Reason { get; }

    /// <summary>The credentials are good.</summary>
    public static Pop3AuthResult Success(Pop3Identity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return new(Pop3AuthStatus.Succeeded, identity, null);
    }

    /// <summary>The credentials could not be checked now (for example the user store is unreachable).</summary>
    public static Pop3AuthResult TemporaryFailure(string? reason = null) => new(Pop3AuthStatus.TemporaryFailure, null, reason);
}
