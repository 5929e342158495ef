namespace CloudSpool.Pop3.Engine;

/// <summary>
/// The states of a POP3 session (RFC 1939 section 3). Flags, so that a row of <see cref="Pop3StateTable"/> can
/// name every state a command is valid in.
/// </summary>
[Flags]
internal enum Pop3State
{
    /// <summary>Not a state: "stay where you are" in a transition.</summary>
    Unchanged = 0,

    /// <summary>AUTHORIZATION: the client identifies itself (RFC 1939 section 4).</summary>
    Authorization = 1,

    /// <summary>
    /// AUTHORIZATION after a successful USER: only PASS may complete it (RFC 1939 section 7, PASS "may only be given
    /// in the AUTHORIZATION state immediately after a successful USER command").
    /// </summary>
    AwaitingPassword = 2,

    /// <summary>TRANSACTION: the maildrop is open (RFC 1939 section 5).</summary>
    Transaction = 4,

    /// <summary>UPDATE: entered by QUIT from TRANSACTION; marked messages are removed (RFC 1939 section 6).</summary>
    Update = 8,

    /// <summary>The session is over; the connection is closed.</summary>
    Closed = 16,
}
