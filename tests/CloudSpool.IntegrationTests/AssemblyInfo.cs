// The test suite runs real Linux processes (Azurite, Dovecot) and checks Unix file modes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// The code-page encodings are registered before any test runs (see TestEncodings).
[assembly: Xunit.TestFramework(CloudSpool.TestSupport.TestFramework.TypeName, CloudSpool.TestSupport.TestFramework.AssemblyName)]
