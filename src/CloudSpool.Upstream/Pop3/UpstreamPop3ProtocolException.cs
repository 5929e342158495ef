namespace CloudSpool.Upstream.Pop3;

/// <summary>The server's bytes make no sense as POP3 (a garbled or over-long reply): the connection is unusable.</summary>
internal sealed class UpstreamPop3ProtocolException(string message) : Exception(message);
