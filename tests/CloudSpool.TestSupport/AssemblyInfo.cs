// The fixtures run real Linux processes (Azurite, Dovecot, aiosmtpd) and set Unix file modes.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
