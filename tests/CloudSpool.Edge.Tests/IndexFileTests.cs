using CloudSpool.Core.Spool;
using CloudSpool.Edge;

namespace CloudSpool.Edge.Tests;

/// <summary>
/// The edge's on-disk index of a mailbox: entries of messages in packs keep their offset, and entries of rows sized by
/// the old bare-CR rule keep that mark, across a restart.
/// </summary>
public sealed class IndexFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cloudspool-index-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static SpoolIndexEntry Entry(int i, long? offset, bool bareCrAsCrlf = false) =>
        new($"m:{i:D19}-0000abcd", $"uidl{i}", 100 + i, 98 + i, new string('a', 64), offset is null ? $"box/aa/{i}.eml" : "box/packs/20261129/p.pack", offset,
            bareCrAsCrlf);

    [Fact]
    public void Entries_with_and_without_a_pack_offset_or_the_old_size_rule_read_back_the_same_after_rewrites_and_appends()
    {
        var path = Path.Combine(_directory, "box.index");
        var first = new[] { Entry(1, null), Entry(2, 0, bareCrAsCrlf: true), Entry(3, 4096) };
        new IndexFile(path, "box").Rewrite(first);
        var added = new[] { Entry(4, 123_456_789), Entry(5, null, bareCrAsCrlf: true) };
        new IndexFile(path, "box").Append(added, ["m:0000000000000000001-0000abcd"], () => [.. first.Skip(1), .. added]);

        var loaded = new IndexFile(path, "box").Load();

        Assert.Equal([.. first.Skip(1), .. added], loaded);
    }

    [Fact]
    public void An_index_line_with_an_unreadable_offset_makes_the_file_unusable_so_it_is_rebuilt_from_storage()
    {
        var path = Path.Combine(_directory, "box.index");
        new IndexFile(path, "box").Rewrite([Entry(1, 10)]);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\t10\n", "\tten\n", StringComparison.Ordinal));

        Assert.Null(new IndexFile(path, "box").Load());
    }

    [Fact]
    public void A_version_1_file_is_rebuilt_from_storage_since_it_cannot_tell_which_entries_have_the_old_size_rule()
    {
        var path = Path.Combine(_directory, "box.index");
        new IndexFile(path, "box").Rewrite([Entry(1, null)]);
        File.WriteAllText(path, File.ReadAllText(path).Replace("cloudspool-index\t2\t", "cloudspool-index\t1\t", StringComparison.Ordinal));

        Assert.Null(new IndexFile(path, "box").Load());
    }
}
