namespace CloudSpool.Core.Accounts;

/// <summary>A secret reference could not be resolved, or is not allowed.</summary>
public sealed class SecretUnavailableException(string message) : Exception(message);
