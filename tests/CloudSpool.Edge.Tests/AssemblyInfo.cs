// The edge tests write cache files with Unix file modes on Linux, as the whole suite does.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// The code-page encodings are registered before any test runs (see TestEncodings).
[assembly: Xunit.TestFramework(CloudSpool.TestSupport.TestFramework.TypeName, CloudSpool.TestSupport.TestFramework.AssemblyName)]
