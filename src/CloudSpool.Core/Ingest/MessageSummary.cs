namespace CloudSpool.Core.Ingest;

/// <summary>
/// What readers need to know about a message without opening it, computed once at ingest.
/// Strings are decoded (RFC 2047) and bounded in length so that one hostile header cannot make
/// the metadata row too large.
/// </summary>
public sealed record MessageSummary
{
    /// <summary>Longest value kept for any single summary field.</summary>
    public const int MaxFieldLength = 2048;

    /// <summary>How many attachment names are kept, and how long each may be.</summary>
    public const int MaxAttachmentNames = 50;
    public const int MaxAttachmentNameLength = 256;

    public string? From { get; init; }
    public string? To { get; init; }
    public string? Subject { get; init; }
    public DateTimeOffset? Date { get; init; }
    public string? MessageId { get; init; }
    public string? ListId { get; init; }
    public string? AutoSubmitted { get; init; }
    public string? Precedence { get; init; }
    public int AttachmentCount { get; init; }
    public IReadOnlyList<string> AttachmentNames { get; init; } = [];

    /// <summary>True when MimeKit could not parse the message; the raw bytes are stored regardless.</summary>
    public bool Malformed { get; init; }

    /// <summary>Why the message is flagged as malformed.</summary>
    public string? ParseError { get; init; }
}
