using System.Diagnostics;

namespace CloudSpool.Core.Tests.Security;

/// <summary>What the security tests need of the system: a private scratch folder, chown, and whether they run as root.</summary>
internal static class Posix
{
    /// <summary>A user id that is not this process's (nobody).</summary>
    public const uint OtherUser = 65534;

    /// <summary>This process's effective user id, as the kernel reports it (/proc/self/status).</summary>
    public static uint EffectiveUserId => uint.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal))
        .Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Only root can give a file to another user; as another user those cases are not run.</summary>
    public static bool IsRoot => EffectiveUserId == 0;

    public static void Chown(string path, uint user)
    {
        using var chown = Process.Start(new ProcessStartInfo("chown", ["-h", user.ToString(System.Globalization.CultureInfo.InvariantCulture), path]) { RedirectStandardError = true })!;
        chown.WaitForExit();
        Assert.True(chown.ExitCode == 0, chown.StandardError.ReadToEnd());
    }

    /// <summary>A new folder of this user only (0700), deleted with the returned handle.</summary>
    public static Scratch NewScratch() => new(Directory.CreateTempSubdirectory("cloudspool-sec-").FullName);

    public sealed class Scratch(string path) : IDisposable
    {
        public string Path { get; } = path;

        public string Sub(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
