// The tests run the real cloudspool executable, Azurite and Dovecot as Linux processes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// One test at a time: these tests start Azurite, Dovecot and cloudspool processes, and the integration tests, which
// start theirs in parallel, may be running in another test host meanwhile.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

// The code-page encodings are registered before any test runs (see TestEncodings).
[assembly: Xunit.TestFramework(CloudSpool.TestSupport.TestFramework.TypeName, CloudSpool.TestSupport.TestFramework.AssemblyName)]
