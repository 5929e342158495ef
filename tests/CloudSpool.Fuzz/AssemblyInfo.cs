// The targets run under AFL++, as Linux processes (tests/CloudSpool.Fuzz/run).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
