// The real-client tests run Linux command-line clients (curl, mpop) against the server on loopback.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// The code-page encodings are registered before any test runs (see TestEncodings).
[assembly: Xunit.TestFramework(CloudSpool.TestSupport.TestFramework.TypeName, CloudSpool.TestSupport.TestFramework.AssemblyName)]
