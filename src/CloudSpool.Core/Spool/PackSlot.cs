namespace CloudSpool.Core.Spool;

/// <summary>Where a message's bytes were written in a pack.</summary>
public sealed record PackSlot(string BlobName, long Offset);
