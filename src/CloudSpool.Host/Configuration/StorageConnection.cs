using CloudSpool.Storage.Azure;

namespace CloudSpool.Host.Configuration;

/// <summary>
/// Reads the storage settings as the Azure SDK will: a connection string with the account key, or one carrying a SAS
/// (<c>SharedAccessSignature=</c>, given whole or as <see cref="StorageOptions.SasToken"/> beside the endpoints), or one
/// carrying a SAS per table and container (<c>TableSas.{table}=</c>, <c>BlobSas.{container}=</c>, <c>SwitchSas=</c>: what
/// <c>edge-credentials</c> prints; see <see cref="AzureStorage"/>).
/// </summary>
public static class StorageConnection
{
    /// <summary>The connection string's settings (names case-insensitive); values keep their own '=' characters.</summary>
    public static Dictionary<string, string> Parse(string? connectionString) => AzureStorage.ParseSettings(connectionString);

    public static bool HasEndpoints(string? connectionString)
    {
        var settings = Parse(connectionString);
        return settings.ContainsKey("BlobEndpoint") && settings.ContainsKey("TableEndpoint");
    }

    public static bool HasCredential(string? connectionString)
    {
        var settings = Parse(connectionString);
        return settings.ContainsKey("AccountKey") || settings.ContainsKey("SharedAccessSignature") || settings.Keys.Any(AzureStorage.IsServiceSasSetting);
    }

    /// <summary>True when the credential is a SAS: it may read and write what it was issued for, never create tables or containers.</summary>
    public static bool IsSas(string connectionString) =>
        Parse(connectionString).Keys.Any(k => k.Equals("SharedAccessSignature", StringComparison.OrdinalIgnoreCase) || AzureStorage.IsServiceSasSetting(k));

    /// <summary>The configured connection string with <see cref="StorageOptions.SasToken"/> added when one is set.</summary>
    public static string? Effective(StorageOptions options) =>
        string.IsNullOrWhiteSpace(options.SasToken)
            ? options.ConnectionString
            : options.ConnectionString!.TrimEnd(';', ' ') + ";SharedAccessSignature=" + options.SasToken.Trim().TrimStart('?');
}
