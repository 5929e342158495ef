namespace CloudSpool.TestSupport;

/// <summary>
/// Registers the code-pages encodings. MimeKit caches the charsets it can use the first time it looks, so a test
/// that touches MimeKit before any CloudSpool code must not make Japanese mail undecodable for the tests after it:
/// <see cref="TestFramework"/> calls this before any test of the assembly runs.
/// </summary>
public static class TestEncodings
{
    public static void Register() => System.Text.Encoding.RegisterProvider(System.Text.CodePagesEncodingProvider.Instance);
}
