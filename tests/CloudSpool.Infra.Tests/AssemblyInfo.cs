// The suite runs Linux processes (the Bicep CLI, systemd-analyze, Azurite) and the Linux container image's paths.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
