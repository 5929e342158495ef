namespace CloudSpool.Host.Azurite;

/// <summary>A listener on the embedded Azurite's ports that does not accept the data folder's key: never used.</summary>
public sealed class AzuriteRefusedException(string message) : InvalidOperationException(message);
