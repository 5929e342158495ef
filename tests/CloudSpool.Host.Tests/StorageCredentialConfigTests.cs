using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

/// <summary>Storage:SasToken and SAS connection strings: what the edge runs on instead of the account key.</summary>
public sealed class StorageCredentialConfigTests : IDisposable
{
    private const string Endpoints = "BlobEndpoint=https://acct.blob.core.windows.net;TableEndpoint=https://acct.table.core.windows.net";
    private const string Token = "sv=2025-01-05&ss=bt&srt=o&sp=rwau&se=2027-01-01T00%3A00%3A00Z&sig=abc%3D";
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudspool-config-").FullName;

    private CloudSpoolOptions Load(string json)
    {
        var path = Path.Combine(_dir, "cloudspool.json");
        File.WriteAllText(path, json);
        return ConfigLoader.Load(path);
    }

    [Fact]
    public void A_sas_connection_string_is_a_sas()
    {
        var options = Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}};SharedAccessSignature={{Token}}" } }""");
        var effective = StorageConnection.Effective(options.Storage)!;
        Assert.True(StorageConnection.IsSas(effective));
        Assert.Equal(Token, StorageConnection.Parse(effective)["SharedAccessSignature"]);
    }

    [Fact]
    public void A_sas_token_is_added_to_the_endpoints()
    {
        var options = Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}};", "SasToken": "?{{Token}}" } }""");
        Assert.Equal($"{Endpoints};SharedAccessSignature={Token}", StorageConnection.Effective(options.Storage));
        Assert.False(StorageConnection.IsSas("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5"));
    }

    [Theory]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5", "Storage:SasToken:")]
    [InlineData("", "Storage:SasToken:")]
    public void A_sas_token_needs_endpoints_without_another_credential(string connectionString, string problem)
    {
        var ex = Assert.Throws<ConfigurationInvalidException>(() => Load($$"""{ "Storage": { "ConnectionString": "{{connectionString}}", "SasToken": "{{Token}}" } }"""));
        Assert.Contains(ex.Problems, p => p.StartsWith(problem, StringComparison.Ordinal) && p.Contains("endpoints", StringComparison.Ordinal));
    }

    [Fact]
    public void A_sas_token_that_is_not_one_is_refused()
    {
        var ex = Assert.Throws<ConfigurationInvalidException>(() => Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}}", "SasToken": "hunter2" } }"""));
        Assert.Contains(ex.Problems, p => p.StartsWith("Storage:SasToken:", StringComparison.Ordinal) && p.Contains("not a SAS token", StringComparison.Ordinal));
    }

    [Fact]
    public void A_sas_per_table_and_container_is_a_sas_and_must_be_whole()
    {
        var tokens = "TableSas.messages=tn=messages&sig=a;TableSas.ledger=tn=ledger&sig=a;TableSas.control=tn=control&sig=a;TableSas.runs=tn=runs&sig=a;" +
                     "TableSas.views=tn=views&sig=a;TableSas.forwards=tn=forwards&sig=a;SwitchSas=tn=control&spk=forward&sig=a;BlobSas.spool=sr=c&sig=a;BlobSas.leases=sr=c&sig=a";
        var options = Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}};{{tokens}}" } }""");
        Assert.True(StorageConnection.IsSas(StorageConnection.Effective(options.Storage)!));

        // Cut short (or issued for another name prefix): a configuration error naming what is missing, not a failure later.
        var ex = Assert.Throws<ConfigurationInvalidException>(() => Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}};{{tokens.Replace("TableSas.views=", "X=", StringComparison.Ordinal)}}" } }"""));
        Assert.Contains(ex.Problems, p => p.StartsWith("Storage:ConnectionString:", StringComparison.Ordinal) && p.Contains("TableSas.views", StringComparison.Ordinal));
        ex = Assert.Throws<ConfigurationInvalidException>(() => Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}};{{tokens}}", "NamePrefix": "home" } }"""));
        Assert.Contains(ex.Problems, p => p.Contains("TableSas.homemessages", StringComparison.Ordinal));
        // And no second credential beside it.
        ex = Assert.Throws<ConfigurationInvalidException>(() => Load($$"""{ "Storage": { "ConnectionString": "{{Endpoints}};{{tokens}}", "SasToken": "{{Token}}" } }"""));
        Assert.Contains(ex.Problems, p => p.StartsWith("Storage:SasToken:", StringComparison.Ordinal));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
