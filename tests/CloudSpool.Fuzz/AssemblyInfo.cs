// The targets run under AFL++ on Linux, with the POP3 test doubles of the (Linux-only) test-support library.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
