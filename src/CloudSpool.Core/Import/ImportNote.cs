namespace CloudSpool.Core.Import;

/// <summary>A setting of the old tool that CloudSpool does not take over, or takes over differently, with the reason.</summary>
/// <param name="Setting">The setting as written (e.g. <c>mda "procmail"</c>).</param>
/// <param name="Line">Where it is, from 1 (0: not one line).</param>
/// <param name="Reason">Why it is not mapped, or how it is mapped.</param>
public sealed record ImportNote(string Setting, int Line, string Reason);
