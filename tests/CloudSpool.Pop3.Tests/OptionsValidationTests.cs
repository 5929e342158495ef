using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>
/// The server's and the login throttle's options: every rule of their validators refuses what it should, and the
/// constructors refuse invalid options with an ArgumentException listing every broken rule.
/// </summary>
public sealed class OptionsValidationTests
{
    /// <summary>For each property with a rule: a value breaking it, and what the message says.</summary>
    private static readonly Dictionary<string, (Action<Pop3ServerOptions> Break, string Message)> ServerCases = new()
    {
        ["FailedLoginDelay"] = (o => { o.FailedLoginDelay = TimeSpan.FromSeconds(-1); }, "FailedLoginDelay must not be negative (was -00:00:01)"),
        ["MaxFailedLoginDelay"] = (o => { o.MaxFailedLoginDelay = TimeSpan.FromSeconds(1); },
            "MaxFailedLoginDelay must not be less than FailedLoginDelay (was 00:00:01, 00:00:02)"),
        ["FailedLoginWindow"] = (o => { o.FailedLoginWindow = TimeSpan.Zero; }, "FailedLoginWindow must be positive (was 00:00:00)"),
        ["MaxFailedLogins"] = (o => { o.MaxFailedLogins = 0; }, "MaxFailedLogins must be at least 1 (was 0)"),
        ["FailedLoginLockout"] = (o => { o.FailedLoginLockout = TimeSpan.Zero; }, "FailedLoginLockout must be positive (was 00:00:00)"),
        ["TimeProvider"] = (o => { o.TimeProvider = null!; }, "TimeProvider must be set"),
        ["MaxBadCommands"] = (o => { o.MaxBadCommands = 0; }, "MaxBadCommands must be at least 1 (was 0)"),
        ["IdleTimeoutBeforeLogin"] = (o => { o.IdleTimeoutBeforeLogin = TimeSpan.Zero; }, "IdleTimeoutBeforeLogin must be positive (was 00:00:00)"),
        ["LoginTimeout"] = (o => { o.LoginTimeout = TimeSpan.FromSeconds(-5); }, "LoginTimeout must be positive (was -00:00:05)"),
        ["IdleTimeoutAfterLogin"] = (o => { o.IdleTimeoutAfterLogin = TimeSpan.Zero; }, "IdleTimeoutAfterLogin must be positive (was 00:00:00)"),
        ["MaxSessions"] = (o => { o.MaxSessions = -1; }, "MaxSessions must be at least 1 (was -1)"),
        ["MaxSessionsPerAddress"] = (o => { o.MaxSessionsPerAddress = 0; }, "MaxSessionsPerAddress must be at least 1 (was 0)"),
        ["HostName"] = (o => { o.HostName = "mail <host>"; }, "HostName must be printable ASCII without spaces or angle brackets (was 'mail <host>')"),
        ["ExpireDays"] = (o => { o.ExpireDays = -1; }, "ExpireDays must not be negative (was -1)"),
        ["TransferChunkSize"] = (o => { o.TransferChunkSize = 511; }, "TransferChunkSize must be between 512 and 16777216 (was 511)"),
        ["TlsProtocols"] = (o => { o.TlsProtocols = SslProtocols.None; }, "TlsProtocols must be TLS 1.2, TLS 1.3 or both (was None)"),
        ["Certificate"] = (o => { o.Certificate = PublicOnly(); }, "Certificate must have a private key (subject CN=localhost)"),
    };

    public static TheoryData<string> ServerRules => [.. ServerCases.Keys];

    private static X509Certificate2 PublicOnly() => X509CertificateLoader.LoadCertificate(TestCertificates.Localhost.Export(X509ContentType.Cert));

    [Fact]
    public void The_cases_cover_every_rule_and_the_defaults_break_none()
    {
        var validator = new Pop3ServerOptionsValidator();
        Assert.Equal(validator.Select(r => r.PropertyName).Order(StringComparer.Ordinal), ServerCases.Keys.Order(StringComparer.Ordinal));
        Assert.True(validator.Validate(new Pop3ServerOptions()).IsValid);
        Assert.True(new LoginThrottleOptionsValidator().Validate(new LoginThrottleOptions()).IsValid);
    }

    [Theory]
    [MemberData(nameof(ServerRules))]
    public void Each_server_rule_refuses_its_bad_value_and_the_server_is_not_created(string property)
    {
        var (breakIt, message) = ServerCases[property];
        var options = new Pop3ServerOptions();
        breakIt(options);

        var failure = Assert.Single(new Pop3ServerOptionsValidator().Validate(options).Errors);
        Assert.Equal(property, failure.PropertyName);
        Assert.Equal(message, failure.ErrorMessage);
        var error = Assert.Throws<ArgumentException>(() => new Pop3Server(options, new FakeAuthenticator(), new FakeMaildropProvider()));
        Assert.Equal("invalid POP3 server options: " + message, error.Message);
    }

    [Fact]
    public void Every_broken_server_rule_is_listed_at_once()
    {
        var options = new Pop3ServerOptions();
        foreach (var (breakIt, _) in ServerCases.Values)
            breakIt(options);
        var error = Assert.Throws<ArgumentException>(() => new Pop3Server(options, new FakeAuthenticator(), new FakeMaildropProvider()));
        foreach (var (_, (_, message)) in ServerCases.Where(c => c.Key != "MaxFailedLoginDelay"))
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_login_throttle_refuses_fewer_than_one_failure_or_concurrent_attempt_naming_each()
    {
        var error = Assert.Throws<ArgumentException>(() => new LoginThrottle(new LoginThrottleOptions { MaxFailures = 0, MaxConcurrentPerAddress = 0 }));
        Assert.Equal("options", error.ParamName);
        Assert.Contains("MaxFailures must be at least 1 (was 0)", error.Message, StringComparison.Ordinal);
        Assert.Contains("MaxConcurrentPerAddress must be at least 1 or null (was 0)", error.Message, StringComparison.Ordinal);

        var failures = new LoginThrottleOptionsValidator().Validate(new LoginThrottleOptions { MaxFailures = -3 }).Errors;
        Assert.Equal("MaxFailures must be at least 1 (was -3)", Assert.Single(failures).ErrorMessage);
        failures = new LoginThrottleOptionsValidator().Validate(new LoginThrottleOptions { MaxConcurrentPerAddress = -1 }).Errors;
        Assert.Equal("MaxConcurrentPerAddress must be at least 1 or null (was -1)", Assert.Single(failures).ErrorMessage);
        _ = new LoginThrottle(new LoginThrottleOptions { MaxFailures = 1, MaxConcurrentPerAddress = null });
    }
}
