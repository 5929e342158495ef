namespace CloudSpool.Pop3.Engine;

/// <summary>
/// One POP3 verb. The session calls it only in a state where <see cref="Pop3StateTable"/> allows it and only when
/// its requirement is met, so a handler never checks either; it parses its arguments, acts and writes its reply.
/// </summary>
internal interface IPop3Command
{
    /// <summary>
    /// Runs the command. Returns true on success, false when it was refused: the table picks the next state from
    /// that. Exceptions are for a broken connection (or a bug) only: they end the session.
    /// </summary>
    ValueTask<bool> ExecuteAsync(Pop3Session session, string arguments, CancellationToken cancellationToken);
}

/// <summary>A precondition of a command beyond the state, checked by the session from the table.</summary>
internal enum Pop3Requirement
{
    /// <summary>None.</summary>
    None,

    /// <summary>
    /// The command carries a password: only over TLS or from a network allowed to send plaintext passwords
    /// (RFC 2595 section 2.3).
    /// </summary>
    PasswordAllowed,

    /// <summary>The authenticator verifies APOP digests (RFC 1939 section 7).</summary>
    Apop,

    /// <summary>A certificate is configured and the session is not yet on TLS (RFC 2595 section 4).</summary>
    Stls,
}
