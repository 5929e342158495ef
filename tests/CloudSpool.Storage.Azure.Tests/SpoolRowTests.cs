using Azure;
using Azure.Data.Tables;
using CloudSpool.Core.Ingest;
using CloudSpool.Core.Pull;
using CloudSpool.Core.Spool;
using CloudSpool.Storage.Azure;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Storage.Azure.Tests;

/// <summary>
/// A message's metadata on a real Azurite: in a segment (its index in the segment's table row, its header summary in a line
/// of the segment's blob) as written now; a row of its own with a JSON summary property, or a property per field, as
/// earlier versions wrote it. All read back the same.
/// </summary>
public sealed class SpoolRowTests : IAsyncLifetime
{
    private PullHarness _spool = null!;

    public async Task InitializeAsync() => _spool = await PullHarness.StartAsync();

    public async Task DisposeAsync() => await _spool.DisposeAsync();

    private TableClient Messages => _spool.Runtime.Storage.Messages;

    private static IngestedMessage Message(string sha, MessageSummary summary)
    {
        var figures = new IngestFigures(1234, 1250, sha, new string('b', 64));
        return new(figures, summary, DedupKey.For(summary.MessageId, figures), "acct", "uidl-" + sha[..8], new DateTimeOffset(2026, 11, 29, 3, 0, 0, TimeSpan.Zero));
    }

    private static readonly MessageSummary Rich = new()
    {
        From = "\"Zoë \\\"Q\\\" Müller\" <zoe@example.org>",
        To = "日本語 <jp@example.jp>, bob@example.com",
        Subject = "Tab\there, quote \" and backslash \\ and a bell \u0007, émoji 📬",
        Date = new DateTimeOffset(2026, 11, 28, 22, 15, 0, TimeSpan.FromHours(2)),
        MessageId = "<abc.123@example.org>",
        ListId = "<list.example.org>",
        AutoSubmitted = "auto-generated",
        Precedence = "bulk",
        AttachmentCount = 3,
        AttachmentNames = ["report \"final\".pdf", "фото.jpg"],
    };

    private async Task<(SpoolMessage Read, TableEntity Row)> CommitAndReadAsync(string mailbox, IngestedMessage message)
    {
        var spool = new AzureSpool(_spool.Runtime.Storage);
        var result = Assert.Single(await spool.CommitAsync(mailbox, [message], CancellationToken.None));
        Assert.Equal(StoreOutcome.Stored, result.Outcome);
        var read = await spool.GetAsync(mailbox, result.MessageKey, CancellationToken.None);
        Assert.False((await Messages.GetEntityIfExistsAsync<TableEntity>(mailbox, result.MessageKey)).HasValue); // no row of its own
        var row = (await Messages.GetEntityAsync<TableEntity>(mailbox, StorageNames.SegmentRowKey(result.MessageKey))).Value;
        return (read!, row);
    }

    [Fact]
    public async Task A_summary_is_a_line_of_the_segment_blob_and_reads_back_field_for_field()
    {
        var (read, row) = await CommitAndReadAsync("rows", Message(new string('a', 64), Rich));

        Assert.NotNull(row.GetBinary("Index"));
        Assert.DoesNotContain(row.Keys, k => k is "Summary" or "Subject" or "From" or "AttachmentNames" or "Malformed");
        var line = (await _spool.Runtime.Storage.Spool.GetBlobClient(row.GetString("Blob")).DownloadContentAsync()).Value.Content.ToString();
        Assert.Contains("Zoë", line); // Unicode as is
        Assert.Equivalent(Rich, read.Summary, strict: true);
        Assert.Equal(Rich.Date, read.Summary.Date);
        Assert.Equal(TimeSpan.FromHours(2), read.Summary.Date!.Value.Offset); // the sender's offset is kept
        Assert.Equal(new string('a', 64), read.Sha256);
    }

    [Fact]
    public async Task A_row_written_by_an_earlier_version_with_a_property_per_field_reads_the_same()
    {
        var spool = new AzureSpool(_spool.Runtime.Storage);
        var key = StorageNames.MessageRowKey(DateTimeOffset.UtcNow.UtcTicks, new string('c', 64));
        // As rows were written before the summary property (and the body hash column) went in.
        await Messages.AddEntityAsync(new TableEntity("old", key)
        {
            ["Uidl"] = "U1", ["BlobName"] = "old/cc/" + new string('c', 64) + ".eml", ["RawLength"] = 1234L, ["Pop3Size"] = 1250L,
            ["Sha256"] = new string('c', 64), ["BodySha256"] = new string('b', 64), ["DedupKey"] = "d1", ["SourceAccount"] = "acct",
            ["SourceKey"] = "uidl-1", ["ReceivedAt"] = DateTimeOffset.UtcNow,
            ["From"] = Rich.From, ["To"] = Rich.To, ["Subject"] = Rich.Subject, ["Date"] = Rich.Date, ["MessageId"] = Rich.MessageId,
            ["ListId"] = Rich.ListId, ["AutoSubmitted"] = Rich.AutoSubmitted, ["Precedence"] = Rich.Precedence, ["AttachmentCount"] = 3,
            ["AttachmentNames"] = "[\"report \\\"final\\\".pdf\",\"фото.jpg\"]", ["Malformed"] = false, ["ParseError"] = null,
        });

        var read = await spool.GetAsync("old", key, CancellationToken.None);

        Assert.NotNull(read);
        Assert.Equivalent(Rich with { Date = Rich.Date!.Value.ToUniversalTime() }, read.Summary, strict: true);
        Assert.Equal(Rich.Date, read.Summary.Date); // the same instant (the old column kept it in UTC)
    }

    [Fact]
    public async Task A_summary_of_any_length_reads_back_whole()
    {
        // Every field at its bound, of characters JSON escapes six to one: far past what one table property could hold.
        var control = new string('\u0001', MessageSummary.MaxFieldLength);
        var huge = new MessageSummary
        {
            From = control, To = control, Subject = control, MessageId = control, ListId = control, AutoSubmitted = control,
            Precedence = control, ParseError = control, Malformed = true, AttachmentCount = 50,
            AttachmentNames = Enumerable.Range(0, MessageSummary.MaxAttachmentNames).Select(_ => new string('\u0002', MessageSummary.MaxAttachmentNameLength)).ToList(),
        };

        var (read, _) = await CommitAndReadAsync("huge", Message(new string('e', 64), huge));

        Assert.Equivalent(huge, read.Summary, strict: true);
    }

    private async Task DamageSegmentAsync(TableEntity row, string content) =>
        await _spool.Runtime.Storage.Spool.GetBlobClient(row.GetString("Blob")).UploadAsync(BinaryData.FromString(content), overwrite: true);

    [Fact]
    public async Task A_damaged_summary_leaves_the_message_readable_and_says_so()
    {
        var (read, row) = await CommitAndReadAsync("damaged", Message(new string('f', 64), Rich));
        await DamageSegmentAsync(row, "{\"Key\": \"cut off");

        var again = await new AzureSpool(_spool.Runtime.Storage).GetAsync("damaged", read.MessageKey, CancellationToken.None);

        Assert.NotNull(again);
        Assert.Equal(read.Sha256, again.Sha256);
        Assert.Equal(read.Uidl, again.Uidl);
        Assert.True(again.Summary.Malformed);
        Assert.Contains("stored summary cannot be read", again.Summary.ParseError);

        // Valid JSON with a field missing or null reads as that field's default: no names is an empty list, never null.
        await DamageSegmentAsync(row, $"{{\"Key\":\"{read.MessageKey}\",\"Summary\":{{\"Subject\":\"only this\",\"AttachmentNames\":null}}}}\n");
        var partial = await new AzureSpool(_spool.Runtime.Storage).GetAsync("damaged", read.MessageKey, CancellationToken.None);
        Assert.Equivalent(new MessageSummary { Subject = "only this" }, partial!.Summary, strict: true);
        Assert.Empty(partial.Summary.AttachmentNames);

        // A segment whose blob is gone still lists, serves and forwards its messages.
        await _spool.Runtime.Storage.Spool.GetBlobClient(row.GetString("Blob")).DeleteAsync();
        var lost = await new AzureSpool(_spool.Runtime.Storage).GetAsync("damaged", read.MessageKey, CancellationToken.None);
        Assert.Equal(read.BlobName, lost!.BlobName);
        Assert.Contains("is missing", lost.Summary.ParseError);
    }
}
