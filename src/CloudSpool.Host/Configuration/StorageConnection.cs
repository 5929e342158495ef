namespace CloudSpool.Host.Configuration;

/// <summary>
/// Reads the storage settings as the Azure SDK will: a connection string with the account key, or one carrying a SAS
/// (<c>SharedAccessSignature=</c>, given whole or as <see cref="StorageOptions.SasToken"/> beside the endpoints).
/// </summary>
public static class StorageConnection
{
    /// <summary>The connection string's settings (names case-insensitive); values keep their own '=' characters.</summary>
    public static Dictionary<string, string> Parse(string? connectionString)
    {
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in (connectionString ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals > 0)
                settings[part[..equals].Trim()] = part[(equals + 1)..].Trim();
        }
        return settings;
    }

    public static bool HasEndpoints(string? connectionString)
    {
        var settings = Parse(connectionString);
        return settings.ContainsKey("BlobEndpoint") && settings.ContainsKey("TableEndpoint");
    }

    public static bool HasCredential(string? connectionString)
    {
        var settings = Parse(connectionString);
        return settings.ContainsKey("AccountKey") || settings.ContainsKey("SharedAccessSignature");
    }

    /// <summary>True when the credential is a SAS: it may read and write what it was issued for, never create tables or containers.</summary>
    public static bool IsSas(string connectionString) => Parse(connectionString).ContainsKey("SharedAccessSignature");

    /// <summary>The configured connection string with <see cref="StorageOptions.SasToken"/> added when one is set.</summary>
    public static string? Effective(StorageOptions options) =>
        string.IsNullOrWhiteSpace(options.SasToken)
            ? options.ConnectionString
            : options.ConnectionString!.TrimEnd(';', ' ') + ";SharedAccessSignature=" + options.SasToken.Trim().TrimStart('?');
}
