using System.Runtime.CompilerServices;

namespace CloudSpool.Core;

/// <summary>
/// Japanese (ISO-2022-JP, Shift_JIS) and other legacy charsets live in the code-pages provider on .NET. It must be
/// registered before MimeKit first looks at the encodings it can use (MimeKit caches what it found), so it is
/// registered when this assembly loads, before any of its code runs.
/// </summary>
internal static class Encodings
{
#pragma warning disable CA2255 // The one case module initializers are for: set-up that must precede any other code.
    [ModuleInitializer]
    internal static void Register() => System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
}
