// The real-client tests run Linux command-line clients (curl, mpop) against the server on loopback.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

/// <summary>Runs when the test assembly loads, before any test (see <see cref="CloudSpool.TestSupport.TestEncodings"/>).</summary>
internal static class TestAssemblySetup
{
#pragma warning disable CA2255 // The one case module initializers are for: set-up that must precede any other code.
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void Run() => CloudSpool.TestSupport.TestEncodings.Register();
}
