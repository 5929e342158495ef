using System.Globalization;
using System.Text;
using CloudSpool.Core.Spool;

namespace CloudSpool.Edge;

/// <summary>
/// The persisted index of one mailbox: a text file of tab-separated lines, appended as entries come and go and
/// rewritten whole (atomically, by rename) when it holds many removals. It is a cache of the Table metadata:
/// anything unreadable in it is dropped and rebuilt from storage, never trusted.
/// </summary>
/// <remarks>
/// Lines: a header <c>cloudspool-index 2 MAILBOX</c>; <c>+ KEY UIDL POP3SIZE RAWLENGTH SHA256 BLOBNAME [OFFSET]</c> for an
/// entry, <c>~</c> instead of <c>+</c> for one served by the old bare-CR rule (<see cref="SpoolIndexEntry.BareCrAsCrlf"/>);
/// <c>- KEY</c> for a removal. A torn last line (a crash while appending) is cut off at load. Version 1 files, which
/// could not tell the two kinds of entry apart, are rebuilt from storage.
/// </remarks>
internal sealed class IndexFile(string path, string mailbox)
{
    private const string Magic = "cloudspool-index";
    private const int Version = 2;
    private int _appendedRemovals;

    public string Path { get; } = path;

    /// <summary>The entries stored, or null when there is no usable file (missing, other mailbox or version, corrupt).</summary>
    /// <remarks>
    /// Read a line at a time: the file of 100,000 messages is about 21 MB, and read whole (as bytes, then one string, then
    /// lines) it would be held three times over while the edge starts. The entries are gathered in a list sized from the
    /// file's length and sorted only when the appends left them out of order: a map of every key, grown as it fills,
    /// would leave several times the index's own size of garbage on the large-object heap.
    /// </remarks>
    public SpoolIndexEntry[]? Load()
    {
        long end, length;
        try
        {
            using var probe = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            length = probe.Length;
            end = WholeLinesLength(probe);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        if (end < length)
        {
            // A torn append: keep the whole lines, so the next append starts on a line of its own.
            using var fs = new FileStream(Path, FileMode.Open, FileAccess.Write);
            fs.SetLength(end);
        }
        using var reader = new StreamReader(Path, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false,
            new FileStreamOptions { Access = FileAccess.Read, Share = FileShare.ReadWrite, BufferSize = 64 * 1024 });
        var first = true;
        var entries = new List<(SpoolIndexEntry Entry, int Line)>((int)Math.Min(end / ApproximateLineBytes + 16, 1 << 24));
        var removedAt = new Dictionary<string, int>(StringComparer.Ordinal); // key -> the last line removing it
        var ordered = true;
        var number = 0;
        // A pack's name is on the line of each of its messages (a thousand small ones fill a pack): held once, as a
        // listing from storage holds it, rather than once a line.
        var packs = new HashSet<string>(StringComparer.Ordinal);
        var removals = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Length == 0)
                continue;
            if (first)
            {
                if (line != Header)
                    return null;
                first = false;
                continue;
            }
            var f = line.Split('\t');
            if (f is ["-", var key])
            {
                removedAt[key] = number;
                removals++;
            }
            else if (f is [var kind and ("+" or "~"), var k, var uidl, var size, var raw, var sha, var blob, ..] && f.Length <= 8
                     && long.TryParse(size, NumberStyles.None, CultureInfo.InvariantCulture, out var pop3Size)
                     && long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out var rawLength))
            {
                // An eighth field is the message's offset in its pack (absent: the blob is the message's own).
                long? offset = null;
                if (f.Length == 8)
                {
                    if (!long.TryParse(f[7], NumberStyles.None, CultureInfo.InvariantCulture, out var at))
                        return null;
                    offset = at;
                    if (!packs.TryGetValue(blob, out var shared))
                        packs.Add(shared = blob);
                    blob = shared;
                }
                var entry = new SpoolIndexEntry(k, uidl, pop3Size, rawLength, sha, blob, offset, BareCrAsCrlf: kind == "~");
                if (!entry.HasDigest)
                    return null;
                ordered &= entries.Count == 0 || string.CompareOrdinal(entries[^1].Entry.MessageKey, k) < 0;
                entries.Add((entry, number));
            }
            else
            {
                return null;
            }
        }
        if (first)
            return null;
        _appendedRemovals = removals;
        if (!ordered)
            entries.Sort(static (a, b) => string.CompareOrdinal(a.Entry.MessageKey, b.Entry.MessageKey) is var c and not 0 ? c : a.Line.CompareTo(b.Line));
        // Of a key's lines, the last counts: an entry stands unless a later line removes it or adds it again.
        bool Stands(int i) =>
            (i + 1 == entries.Count || entries[i + 1].Entry.MessageKey != entries[i].Entry.MessageKey)
            && !(removedAt.TryGetValue(entries[i].Entry.MessageKey, out var removedLine) && removedLine > entries[i].Line);
        var count = 0;
        for (var i = 0; i < entries.Count; i++)
            count += Stands(i) ? 1 : 0;
        var loaded = new SpoolIndexEntry[count];
        for (int i = 0, at = 0; i < entries.Count; i++)
        {
            if (Stands(i))
                loaded[at++] = entries[i].Entry;
        }
        return loaded;
    }

    /// <summary>About how long a line is (a key, a UIDL, sizes, a SHA-256, a blob name and an offset): sizes the list at load.</summary>
    private const int ApproximateLineBytes = 200;

    /// <summary>The length of the file up to and with its last line end (0 when it has none).</summary>
    private static long WholeLinesLength(FileStream file)
    {
        var block = new byte[64 * 1024];
        var end = file.Length;
        while (end > 0)
        {
            var start = Math.Max(0, end - block.Length);
            var count = (int)(end - start);
            file.Position = start;
            file.ReadExactly(block, 0, count);
            var at = Array.LastIndexOf(block, (byte)'\n', count - 1, count);
            if (at >= 0)
                return start + at + 1;
            end = start;
        }
        return 0;
    }

    /// <summary>Appends what changed; rewrites the file instead when removals have piled up.</summary>
    public void Append(IReadOnlyCollection<SpoolIndexEntry> added, IReadOnlyCollection<string> removed, Func<IReadOnlyList<SpoolIndexEntry>> all)
    {
        if (added.Count == 0 && removed.Count == 0)
            return;
        _appendedRemovals += removed.Count;
        if (!File.Exists(Path) || _appendedRemovals > 1000 && _appendedRemovals > all().Count)
        {
            Rewrite(all());
            return;
        }
        var text = new StringBuilder();
        foreach (var key in removed)
            text.Append("-\t").Append(key).Append('\n');
        foreach (var e in added)
            AppendEntry(text, e);
        using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
        stream.Write(Encoding.UTF8.GetBytes(text.ToString()));
    }

    /// <summary>Writes the whole index to a new file and renames it into place.</summary>
    public void Rewrite(IReadOnlyList<SpoolIndexEntry> entries)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var temp = Path + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var writer = new StreamWriter(stream, new UTF8Encoding(false)))
        {
            writer.Write(Header);
            writer.Write('\n');
            var text = new StringBuilder();
            foreach (var e in entries)
            {
                AppendEntry(text, e);
                if (text.Length > 64 * 1024)
                {
                    writer.Write(text);
                    text.Clear();
                }
            }
            writer.Write(text);
        }
        File.Move(temp, Path, overwrite: true);
        _appendedRemovals = 0;
    }

    private string Header => $"{Magic}\t{Version}\t{mailbox}";

    private static void AppendEntry(StringBuilder text, SpoolIndexEntry e)
    {
        // Fields never hold tabs or line ends (keys, UIDLs, hashes and blob names are printable ASCII); one that
        // did would make the line unreadable, and the whole file is then rebuilt from storage.
        text.Append(e.BareCrAsCrlf ? "~\t" : "+\t").Append(e.MessageKey).Append('\t').Append(e.Uidl).Append('\t')
            .Append(e.Pop3Size.ToString(CultureInfo.InvariantCulture)).Append('\t')
            .Append(e.RawLength.ToString(CultureInfo.InvariantCulture)).Append('\t')
            .Append(e.Sha256).Append('\t').Append(e.BlobName);
        if (e.BlobOffset is { } offset)
            text.Append('\t').Append(offset.ToString(CultureInfo.InvariantCulture));
        text.Append('\n');
    }
}
