// The fuzz tests run AFL++ and the fuzz targets as Linux processes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// The code-page encodings are registered before any test runs (see TestEncodings).
[assembly: Xunit.TestFramework(CloudSpool.TestSupport.TestFramework.TypeName, CloudSpool.TestSupport.TestFramework.AssemblyName)]
