using CloudSpool.Core.Accounts;
using CloudSpool.Core.Security;
using CloudSpool.Host.Scheduling;

namespace CloudSpool.Core.Tests.Security;

/// <summary>
/// Issue 19, item 5: a stored account row must not be able to make the worker send any file or variable it can read to
/// a host of the row's choice. References are checked when stored and again when used.
/// </summary>
public sealed class SecretPolicyTests : IDisposable
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private readonly Posix.Scratch _scratch = Posix.NewScratch();
    private readonly string _secrets;
    private readonly SecretPolicy _policy;

    public SecretPolicyTests()
    {
        _secrets = _scratch.Sub("secrets");
        Directory.CreateDirectory(_secrets, PrivateFiles.DirectoryMode);
        _policy = new SecretPolicy(_secrets, SecretPolicy.DefaultEnvironmentPrefix);
    }

    public void Dispose() => _scratch.Dispose();

    private string Secret(string name, string content, UnixFileMode mode = Private)
    {
        var path = Path.Combine(_secrets, name);
        File.WriteAllText(path, content);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    private void Refused(string reference, params string[] explains)
    {
        var stored = _policy.Check(reference);
        Assert.NotNull(stored);
        var used = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve(reference));
        foreach (var text in explains)
        {
            Assert.Contains(text, stored, StringComparison.Ordinal);
            Assert.Contains(text, used.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void An_env_reference_may_name_only_a_variable_with_the_prefix()
    {
        Environment.SetEnvironmentVariable("CLOUDSPOOL_SECRET_TEST_ISP", "s3cret");
        Assert.Null(_policy.Check("env:CLOUDSPOOL_SECRET_TEST_ISP"));
        Assert.Equal("s3cret", _policy.Resolve("env:CLOUDSPOOL_SECRET_TEST_ISP"));

        Environment.SetEnvironmentVariable("ISP_PASSWORD", "s3cret");
        Refused("env:ISP_PASSWORD", "CLOUDSPOOL_SECRET_ (Secrets:EnvironmentPrefix)", "use env:CLOUDSPOOL_SECRET_ISP_PASSWORD", "account remove");
        Refused("env:PATH", "CLOUDSPOOL_SECRET_");
        Refused("env:CLOUDSPOOL__Storage__ConnectionString", "CLOUDSPOOL_SECRET_");
        Refused("env:CLOUDSPOOL_SECRET_", "CLOUDSPOOL_SECRET_"); // the prefix alone names nothing
        Refused("env:cloudspool_secret_x", "CLOUDSPOOL_SECRET_");
        var unset = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve("env:CLOUDSPOOL_SECRET_TEST_UNSET"));
        Assert.Contains("is not set", unset.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CLOUDSPOOL_SECRET_", true)]
    [InlineData("HOME_MAIL_", true)]
    [InlineData("CLOUDSPOOL_", false)] // would reach CLOUDSPOOL__Storage__ConnectionString
    [InlineData("CLOUDSPOOL__", false)]
    [InlineData("X_", false)]
    public void A_prefix_is_validated(string prefix, bool valid) => Assert.Equal(valid, SecretPolicy.IsValidPrefix(prefix));

    [Fact]
    public void A_file_reference_may_name_only_a_private_file_inside_the_secrets_directory()
    {
        var good = Secret("isp", "from-file\n");
        Assert.Null(_policy.Check("file:" + good));
        Assert.Equal("from-file", _policy.Resolve("file:" + good));

        Refused("file:/proc/self/environ", "inside the secrets directory " + _secrets, "(Secrets:Directory)", "install -m 600");
        var outside = _scratch.Sub("id_ed25519");
        File.WriteAllText(outside, "private key");
        File.SetUnixFileMode(outside, Private); // passes the mode check: that is why the place matters
        Refused("file:" + outside, "inside the secrets directory");
        Refused("file:" + _secrets + "/../id_ed25519", "inside the secrets directory", outside);

        // A link inside the directory is judged by where it leads.
        var link = Path.Combine(_secrets, "link");
        File.CreateSymbolicLink(link, outside);
        Refused("file:" + link, "resolves to " + outside);
        var inner = Path.Combine(_secrets, "inner");
        File.CreateSymbolicLink(inner, good);
        Assert.Equal("from-file", _policy.Resolve("file:" + inner));

        // A link that leads the whole directory elsewhere is resolved too (the directory is compared by its real path).
        Assert.Equal("from-file", new SecretPolicy(_secrets + "/.", SecretPolicy.DefaultEnvironmentPrefix).Resolve("file:" + good));
    }

    [Fact]
    public void The_file_and_its_directory_must_be_this_users_and_closed_to_others()
    {
        var file = Secret("isp", "pw", Private | UnixFileMode.OtherRead);
        var open = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve("file:" + file));
        Assert.Contains("chmod 600", open.Message, StringComparison.Ordinal);

        File.SetUnixFileMode(file, Private);
        File.SetUnixFileMode(_secrets, PrivateFiles.DirectoryMode | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute);
        var writable = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve("file:" + file));
        Assert.Contains("writable by nobody else", writable.Message, StringComparison.Ordinal);
        File.SetUnixFileMode(_secrets, PrivateFiles.DirectoryMode);

        Directory.CreateDirectory(Path.Combine(_secrets, "sub"));
        var notFile = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve("file:" + Path.Combine(_secrets, "sub")));
        Assert.Contains("not a regular file", notFile.Message, StringComparison.Ordinal);

        if (!Posix.IsRoot)
            return;
        Posix.Chown(file, Posix.OtherUser);
        var foreignFile = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve("file:" + file));
        Assert.Contains("belongs to user id 65534", foreignFile.Message, StringComparison.Ordinal);
        Posix.Chown(file, 0);
        Posix.Chown(_secrets, Posix.OtherUser);
        var foreignDirectory = Assert.Throws<SecretUnavailableException>(() => _policy.Resolve("file:" + file));
        Assert.Contains("must belong to this user", foreignDirectory.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_secrets_directory_is_named_with_how_to_make_it()
    {
        var policy = new SecretPolicy(_scratch.Sub("none"), SecretPolicy.DefaultEnvironmentPrefix);
        var file = Path.Combine(_scratch.Sub("none"), "isp");
        Assert.Null(policy.Check("file:" + file)); // storing needs no file yet
        var missing = Assert.Throws<SecretUnavailableException>(() => policy.Resolve("file:" + file));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Account_add_refuses_a_reference_the_rule_forbids_and_says_the_rule()
    {
        var validator = new AccountValidator(s => Cron.IsValid(s), _policy);
        var account = new AccountDefinition { Name = "isp", Host = "pop.example.net", Username = "me", PasswordRef = "env:CLOUDSPOOL_SECRET_ISP", Mailbox = "alice" };
        Assert.True(validator.Validate(account).IsValid);
        var error = Assert.Single(validator.Validate(account with { PasswordRef = "env:ISP_PASSWORD" }).Errors);
        Assert.Equal("PasswordRef", error.PropertyName);
        Assert.Contains("starts with CLOUDSPOOL_SECRET_", error.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("file:/proc/self/environ", Assert.Single(validator.Validate(account with { PasswordRef = "file:/proc/self/environ" }).Errors).ErrorMessage, StringComparison.Ordinal);
        // Without a rule (a stored account about to be scheduled) only the shape is checked: its runs fail, saying why.
        Assert.True(new AccountValidator(s => Cron.IsValid(s)).Validate(account with { PasswordRef = "env:ISP_PASSWORD" }).IsValid);
    }
}
