// The test suite runs real Linux processes (Azurite, Dovecot) and checks Unix file modes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
