// The real-client tests run Linux command-line clients (curl, mpop) against the server on loopback.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
