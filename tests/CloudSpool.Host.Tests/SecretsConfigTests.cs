using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

/// <summary>The Secrets section, and the relay password reference judged by it when the configuration loads.</summary>
public sealed class SecretsConfigTests : ConfigFileTest
{
    private IReadOnlyList<string> Problems(string json) =>
        Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write(json))).Problems;

    private const string Forward = """
        "Forward": { "Mailbox": "alice", "Sender": "cloudspool@home.example", "Destinations": [ { "Address": "phone@carrier.example" } ],
                     "Smtp": { "Host": "smtp.example.net", "User": "me", "Password": "PASSWORD" } }
        """;

    [Fact]
    public void The_defaults_are_the_config_folders_secrets_and_the_cloudspool_secret_prefix()
    {
        var policy = ConfigLoader.Load(null).Secrets.Policy();
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData), "cloudspool", "secrets"), policy.Directory);
        Assert.Equal("CLOUDSPOOL_SECRET_", policy.EnvironmentPrefix);
    }

    [Fact]
    public void The_settings_are_validated()
    {
        var problems = Problems("""{ "Secrets": { "Directory": "relative/secrets", "EnvironmentPrefix": "CLOUDSPOOL_" } }""");
        Assert.Contains(problems, p => p.StartsWith("Secrets:Directory: 'relative/secrets' is not an absolute directory path", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Secrets:EnvironmentPrefix: 'CLOUDSPOOL_' is not a variable prefix", StringComparison.Ordinal));
        var options = ConfigLoader.Load(Write("""{ "Secrets": { "Directory": "/etc/cloudspool/secrets", "EnvironmentPrefix": "HOME_MAIL_" } }"""));
        Assert.Equal("/etc/cloudspool/secrets", options.Secrets.Policy().Directory);
    }

    [Fact]
    public void The_relay_password_follows_the_same_rule()
    {
        var refused = Problems("{" + Forward.Replace("PASSWORD", "env:SMTP_PASSWORD", StringComparison.Ordinal) + "}");
        var problem = Assert.Single(refused);
        Assert.StartsWith("Forward:Smtp:Password: 'env:SMTP_PASSWORD' is not allowed", problem, StringComparison.Ordinal);
        Assert.Contains("CLOUDSPOOL_SECRET_", problem, StringComparison.Ordinal);
        Assert.Single(Problems("{" + Forward.Replace("PASSWORD", "file:/proc/self/environ", StringComparison.Ordinal) + "}"));

        ConfigLoader.Load(Write("{" + Forward.Replace("PASSWORD", "env:CLOUDSPOOL_SECRET_SMTP", StringComparison.Ordinal) + "}"));
        // A configured prefix is the rule the relay password is judged by.
        ConfigLoader.Load(Write("{" + Forward.Replace("PASSWORD", "env:HOME_MAIL_SMTP", StringComparison.Ordinal) + """, "Secrets": { "EnvironmentPrefix": "HOME_MAIL_" } }"""));
    }
}
