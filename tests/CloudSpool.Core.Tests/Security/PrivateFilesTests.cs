using CloudSpool.Core.Security;

namespace CloudSpool.Core.Tests.Security;

/// <summary>
/// Issue 19, item 8: mail staged on the local disk (pull, forward, the edge without a cache) lies in a directory of this
/// user only (0700; a directory of another user, or a link, is refused) in 0600 files, never in a shared /tmp/cloudspool.
/// </summary>
public sealed class PrivateFilesTests : IDisposable
{
    private readonly Posix.Scratch _scratch = Posix.NewScratch();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void The_edge_stages_where_pull_and_forward_do()
    {
        Assert.Equal(PrivateFiles.DefaultTempDirectory, new CloudSpool.Edge.SpoolEdgeOptions().TempDirectory);
        Assert.Equal(Posix.EffectiveUserId, PrivateFiles.EffectiveUserId);
    }

    [Fact]
    public void A_new_staging_directory_is_0700_and_an_own_wider_one_is_narrowed()
    {
        var fresh = _scratch.Sub("fresh");
        PrivateFiles.EnsureDirectory(fresh);
        Assert.Equal(PrivateFiles.DirectoryMode, File.GetUnixFileMode(fresh));

        var wide = _scratch.Sub("wide");
        Directory.CreateDirectory(wide, PrivateFiles.DirectoryMode | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        File.SetUnixFileMode(wide, (UnixFileMode)0x1ED); // 0755
        PrivateFiles.EnsureDirectory(wide);
        Assert.Equal(PrivateFiles.DirectoryMode, File.GetUnixFileMode(wide));
    }

    [Fact]
    public void A_link_or_another_users_directory_is_refused()
    {
        var target = _scratch.Sub("target");
        Directory.CreateDirectory(target);
        var link = _scratch.Sub("link");
        Directory.CreateSymbolicLink(link, target);
        var ex = Assert.Throws<UnauthorizedAccessException>(() => PrivateFiles.EnsureDirectory(link));
        Assert.Contains("symbolic link", ex.Message, StringComparison.Ordinal);

        if (!Posix.IsRoot)
            return;
        var planted = _scratch.Sub("planted");
        Directory.CreateDirectory(planted);
        File.SetUnixFileMode(planted, (UnixFileMode)0x1FF); // 0777, as someone preparing it for us would leave it
        Posix.Chown(planted, Posix.OtherUser);
        var foreign = Assert.Throws<UnauthorizedAccessException>(() => PrivateFiles.EnsureDirectory(planted));
        Assert.Contains("belongs to user id 65534", foreign.Message, StringComparison.Ordinal);
        Assert.Equal((UnixFileMode)0x1FF, File.GetUnixFileMode(planted)); // refused, not taken over
    }

    [Fact]
    public void New_private_files_are_0600_and_never_opened_through_an_existing_name()
    {
        var path = _scratch.Sub("file");
        using (new FileStream(path, PrivateFiles.NewFileOptions(FileAccess.Write)))
        {
        }
        Assert.Equal(PrivateFiles.FileMode, File.GetUnixFileMode(path));
        var link = _scratch.Sub("link");
        File.CreateSymbolicLink(link, _scratch.Sub("elsewhere"));
        Assert.Throws<IOException>(() => new FileStream(link, PrivateFiles.NewFileOptions(FileAccess.Write)));
        Assert.False(File.Exists(_scratch.Sub("elsewhere")));
    }
}
