using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CloudSpool.Core.Security;

/// <summary>What kind of file a path names.</summary>
public enum FileKind
{
    Other,
    File,
    Directory,
    SymbolicLink,
}

/// <summary>A file's owner, permission bits and kind, as the kernel reports them.</summary>
public readonly record struct FileStatus(uint Owner, UnixFileMode Mode, FileKind Kind)
{
    /// <summary>The permission bits in octal, e.g. 0755.</summary>
    public string OctalMode => "0" + Convert.ToString((int)Mode & 0xFFF, 8);
}

/// <summary>
/// Private files and directories on the local disk: mail staged between upstream, the spool, the phone and a LAN client
/// never lies in a place another local user can read or swap. Linux only (the checks use statx); on Windows the
/// directory's ACL inherited from the user profile is relied on.
/// </summary>
public static class PrivateFiles
{
    private const UnixFileMode GroupOrOthers = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>0700.</summary>
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>0600.</summary>
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Whether owners and modes can be checked here (Linux).</summary>
    public static bool Checked => OperatingSystem.IsLinux();

    /// <summary>The user this process acts as (its effective user id).</summary>
    public static uint EffectiveUserId => Checked ? Native.geteuid() : 0;

    /// <summary>
    /// The default staging directory: one per user in the system's temp folder (<c>/tmp/cloudspool-UID</c>), so two users
    /// never share one and nobody can prepare it for another.
    /// </summary>
    public static string DefaultTempDirectory => Checked
        ? Path.Combine(Path.GetTempPath(), "cloudspool-" + EffectiveUserId.ToString(CultureInfo.InvariantCulture))
        : Path.Combine(Path.GetTempPath(), "cloudspool");

    /// <summary>
    /// Makes sure <paramref name="path"/> is a directory only this user can enter: creates it (mode 0700) when missing;
    /// refuses a symbolic link, something else than a directory, or a directory of another user (which could read or swap
    /// what is put there); narrows the mode of one of this user's own to 0700. Returns the path.
    /// </summary>
    /// <exception cref="UnauthorizedAccessException">The directory cannot be made private; the message says why and what to do.</exception>
    public static string EnsureDirectory(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!OperatingSystem.IsLinux())
        {
            Directory.CreateDirectory(path);
            return path;
        }
        var status = Status(path, followLinks: false);
        if (status is null)
        {
            Directory.CreateDirectory(path, DirectoryMode);
            status = Status(path, followLinks: false) ?? throw new DirectoryNotFoundException($"{path} vanished right after it was created");
        }
        var me = EffectiveUserId;
        var s = status.Value;
        if (s.Kind == FileKind.SymbolicLink)
            throw new UnauthorizedAccessException($"{path} is a symbolic link, not a directory: refused (whoever made it could read or swap the mail staged there); remove it, or configure another directory");
        if (s.Kind != FileKind.Directory)
            throw new UnauthorizedAccessException($"{path} is not a directory: remove it, or configure another directory");
        if (s.Owner != me)
            throw new UnauthorizedAccessException($"the directory {path} belongs to user id {s.Owner}, not to this process's user id {me}: refused (its owner could read or swap the mail staged there); remove it, or configure a directory of your own");
        if ((s.Mode & GroupOrOthers) != 0)
            File.SetUnixFileMode(path, DirectoryMode); // ours: only narrowed, never widened
        return path;
    }

    /// <summary>Options for a new private file: created (never opened if it exists, never through a link), mode 0600.</summary>
    public static FileStreamOptions NewFileOptions(FileAccess access, FileOptions options = FileOptions.None, int bufferSize = 4096)
    {
        var result = new FileStreamOptions
        {
            Mode = System.IO.FileMode.CreateNew,
            Access = access,
            Share = FileShare.None,
            Options = options,
            BufferSize = bufferSize,
        };
        if (!OperatingSystem.IsWindows())
            result.UnixCreateMode = FileMode;
        return result;
    }

    /// <summary>The status of a path; null when nothing is there. <paramref name="followLinks"/>: stat, else lstat.</summary>
    public static FileStatus? Status(string path, bool followLinks)
    {
        EnsureChecked();
        var buffer = new byte[256];
        var flags = followLinks ? 0 : Native.AtSymlinkNoFollow;
        if (Native.statx(Native.AtFdCwd, path, flags, Native.StatxBasic, buffer) == 0)
            return Parse(buffer);
        var errno = Marshal.GetLastPInvokeError();
        if (errno is Native.ENOENT or Native.ENOTDIR)
            return null;
        throw new IOException($"cannot check {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
    }

    /// <summary>The status of an open file (what was opened, whatever its name points at now).</summary>
    public static FileStatus Status(SafeFileHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        EnsureChecked();
        var buffer = new byte[256];
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            if (Native.statx((int)handle.DangerousGetHandle(), "", Native.AtEmptyPath, Native.StatxBasic, buffer) == 0)
                return Parse(buffer);
            throw new IOException($"cannot check an open file: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        finally
        {
            if (added)
                handle.DangerousRelease();
        }
    }

    /// <summary>The path with every symbolic link, '.' and '..' resolved (realpath); null when it does not exist.</summary>
    public static string? RealPath(string path)
    {
        if (!Checked)
            return File.Exists(path) || Directory.Exists(path) ? Path.GetFullPath(path) : null;
        var resolved = Native.realpath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno is Native.ENOENT or Native.ENOTDIR)
                return null;
            throw new IOException($"cannot resolve {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Native.free(resolved);
        }
    }

    /// <summary>Whether the mode lets anyone but the owner read, write or enter.</summary>
    public static bool OpenToGroupOrOthers(UnixFileMode mode) => (mode & GroupOrOthers) != 0;

    /// <summary>Whether the mode lets anyone but the owner write.</summary>
    public static bool WritableByGroupOrOthers(UnixFileMode mode) => (mode & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0;

    private static void EnsureChecked()
    {
        if (!Checked)
            throw new PlatformNotSupportedException("file owners and modes can be checked on Linux only");
    }

    private static FileStatus Parse(byte[] statx)
    {
        // struct statx (linux/stat.h), the same layout on every architecture, in native byte order: stx_uid at 20, stx_mode (16 bits) at 28.
        var owner = BitConverter.ToUInt32(statx, 20);
        var mode = BitConverter.ToUInt16(statx, 28);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.File,
            0x4000 => FileKind.Directory,
            0xA000 => FileKind.SymbolicLink,
            _ => FileKind.Other,
        };
        return new FileStatus(owner, (UnixFileMode)(mode & 0xFFF), kind);
    }

    private static class Native
    {
        public const int AtFdCwd = -100;
        public const int AtSymlinkNoFollow = 0x100;
        public const int AtEmptyPath = 0x1000;
        public const uint StatxBasic = 0x7FF;
        public const int ENOENT = 2;
        public const int ENOTDIR = 20;

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

        [DllImport("libc.so.6")]
        public static extern uint geteuid();

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern IntPtr realpath([MarshalAs(UnmanagedType.LPUTF8Str)] string path, IntPtr resolved);

        [DllImport("libc.so.6")]
        public static extern void free(IntPtr pointer);
    }
}
