using System.Net;

namespace CloudSpool.Pop3;

/// <summary>An address for <see cref="Pop3Server"/> to listen on.</summary>
/// <param name="EndPoint">Address and port; port 0 picks a free port (see <see cref="Pop3Server.LocalEndPoints"/>).</param>
/// <param name="ImplicitTls">
/// True for a POP3S port (RFC 8314, usually 995): TLS starts as soon as the client connects.
/// False for a plain port, where the client may upgrade with STLS (RFC 2595 section 4).
/// </param>
public sealed record Pop3Endpoint(IPEndPoint EndPoint, bool ImplicitTls = false);
