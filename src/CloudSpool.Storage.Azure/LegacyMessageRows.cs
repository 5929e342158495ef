using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Azure.Data.Tables;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Spool;

namespace CloudSpool.Storage.Azure;

/// <summary>
/// Message rows of a row each (<c>m:</c> keys, with a <c>d:</c> dedup row each), as versions before segments wrote them:
/// still read, removed by retention, and moved into segments by <see cref="SpoolCompaction"/>; never written.
/// </summary>
internal static class LegacyMessageRows
{
    /// <summary>
    /// Summaries as JSON: Unicode as is; quotes and control characters escaped. The names of <see cref="MessageSummary"/>'s
    /// properties are part of the stored format (in these rows and in segment blobs): renaming one loses that field in
    /// everything written before.
    /// </summary>
    public static readonly JsonSerializerOptions SummaryJson = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    };

    /// <remarks>
    /// <c>Pop3SizeRule</c> (<see cref="IngestFigures.SizeRule"/>) is absent from rows written before size rule 2, whose
    /// <c>Pop3Size</c> counted every bare CR or LF as CRLF. Such a row with a size equal to its length has neither, so its
    /// size is right under either rule; one with a larger size may have bare CRs (or only bare LFs, which both rules count
    /// alike): the edge serves it by the old rule, so RETR still sends what LIST announces (byte for byte as before when it
    /// has bare CRs, and as under rule 2 when it has none).
    /// </remarks>
    public static readonly string[] IndexColumns = ["RowKey", "Uidl", "Pop3Size", "Pop3SizeRule", "RawLength", "Sha256", "BlobName", "BlobOffset"];

    public static SpoolIndexEntry IndexEntryOf(TableEntity e)
    {
        var pop3Size = e.GetInt64("Pop3Size") ?? 0;
        var rawLength = e.GetInt64("RawLength") ?? 0;
        return new SpoolIndexEntry(e.RowKey, e.GetString("Uidl"), pop3Size, rawLength,
            e.GetString("Sha256"), e.GetString("BlobName"), e.GetInt64("BlobOffset"),
            BareCrAsCrlf: e.GetInt32("Pop3SizeRule") is null && pop3Size > rawLength);
    }

    /// <summary>A summary read from JSON; a damaged one leaves the message listed, served and forwarded, and says so.</summary>
    public static MessageSummary ParseSummary(string json)
    {
        try
        {
            var summary = JsonSerializer.Deserialize<MessageSummary>(json, SummaryJson) ?? new MessageSummary();
            return summary.AttachmentNames is null ? summary with { AttachmentNames = [] } : summary;
        }
        catch (JsonException ex)
        {
            return new MessageSummary { Malformed = true, ParseError = $"the stored summary cannot be read: {ex.Message}" };
        }
    }

    private static MessageSummary SummaryOf(TableEntity e) =>
        e.GetString("Summary") is { } json ? ParseSummary(json) : SummaryFromColumns(e);

    /// <summary>The summary as a property per field: rows written before the summary property, and summaries too long for one.</summary>
    private static MessageSummary SummaryFromColumns(TableEntity e) => new()
    {
        From = e.GetString("From"),
        To = e.GetString("To"),
        Subject = e.GetString("Subject"),
        Date = e.GetDateTimeOffset("Date"),
        MessageId = e.GetString("MessageId"),
        ListId = e.GetString("ListId"),
        AutoSubmitted = e.GetString("AutoSubmitted"),
        Precedence = e.GetString("Precedence"),
        AttachmentCount = e.GetInt32("AttachmentCount") ?? 0,
        AttachmentNames = JsonSerializer.Deserialize<string[]>(e.GetString("AttachmentNames") ?? "[]") ?? [],
        Malformed = e.GetBoolean("Malformed") ?? false,
        ParseError = e.GetString("ParseError"),
    };

    private static SpoolPackPlace? PackOf(TableEntity e) =>
        e.GetInt64("BlobOffset") is { } offset ? new SpoolPackPlace(offset, e.GetString("PackFirst") ?? "", e.GetString("PackLast") ?? "") : null;

    public static SpoolMessage FromEntity(TableEntity e) => new()
    {
        Mailbox = e.PartitionKey,
        MessageKey = e.RowKey,
        Uidl = e.GetString("Uidl"),
        BlobName = e.GetString("BlobName"),
        Pack = PackOf(e),
        RawLength = e.GetInt64("RawLength") ?? 0,
        Pop3Size = e.GetInt64("Pop3Size") ?? 0,
        Sha256 = e.GetString("Sha256"),
        DedupKey = e.GetString("DedupKey"),
        SourceAccount = e.GetString("SourceAccount"),
        SourceKey = e.GetString("SourceKey"),
        ReceivedAt = e.GetDateTimeOffset("ReceivedAt") ?? default,
        Summary = SummaryOf(e),
    };
}
