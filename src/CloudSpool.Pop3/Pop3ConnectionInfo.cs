using System.Net;

namespace CloudSpool.Pop3;

/// <summary>
/// What the server knows about the connection a request comes from, passed to the ports so they can log,
/// penalise or refuse per address.
/// </summary>
/// <param name="SessionId">Identifies the session in logs; unique per server instance.</param>
/// <param name="RemoteEndPoint">The client's address, when the transport has one.</param>
/// <param name="IsSecure">True once the session runs over TLS (implicit TLS or after STLS).</param>
public sealed record Pop3ConnectionInfo(string SessionId, IPEndPoint? RemoteEndPoint, bool IsSecure);
