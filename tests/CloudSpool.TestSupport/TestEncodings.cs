namespace CloudSpool.TestSupport;

/// <summary>
/// Registers the code-pages encodings. MimeKit caches the charsets it can use the first time it looks, so a test
/// that touches MimeKit before any CloudSpool code must not make Japanese mail undecodable for the tests after it:
/// each test assembly calls this from a module initializer of its own (see its AssemblyInfo.cs), which runs when the
/// assembly loads, before any test.
/// </summary>
public static class TestEncodings
{
    public static void Register() => System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
}
