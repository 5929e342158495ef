using CloudSpool.Core.Accounts;
using CloudSpool.Core.Import;
using CloudSpool.Host.Import;

namespace CloudSpool.Core.Tests.Import;

/// <summary>How an imported account's password and mailbox are decided, and how an inline password is moved.</summary>
public sealed class AccountImportPlanTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cloudspool-import-plan-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private SecretPolicy Secrets => new(Path.Combine(_dir, "secrets"), "CLOUDSPOOL_SECRET_");

    private static ImportedAccount Account(string name, ImportedPassword password, string? localUser = null) => new()
    {
        Tool = ImportTool.Mpop, File = "/home/a/.mpoprc", Line = 3, Label = name, Name = name, Host = "pop.example.net", Username = "u",
        LocalUser = localUser, Password = password,
    };

    [Fact]
    public void Import_moves_inline_passwords_to_secret_files_and_names_a_variable_for_the_rest()
    {
        var problems = new List<string>();
        var plans = AccountImport.Plan(
        [
            Account("inline", new ImportedPassword(PasswordSource.Inline, "hunter2", 7), localUser: "Bob Smith"),
            Account("by-command", new ImportedPassword(PasswordSource.Command, "pass show mail", 8)),
            Account("asked.for", ImportedPassword.None),
        ], Secrets, "alice", problems);

        Assert.Empty(problems);
        Assert.Equal($"file:{_dir}/secrets/inline", plans[0].Definition.PasswordRef);
        Assert.Equal("bob-smith", plans[0].Definition.Mailbox); // the local user names the mailbox
        Assert.Equal(FirstRunMode.Import, plans[0].Definition.FirstRun);
        Assert.Equal("hunter2", plans[0].SecretValue);
        Assert.DoesNotContain("hunter2", plans[0].Password, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", plans[0].ToString(), StringComparison.Ordinal);

        Assert.Equal("env:CLOUDSPOOL_SECRET_BY_COMMAND", plans[1].Definition.PasswordRef);
        Assert.Equal("alice", plans[1].Definition.Mailbox);
        Assert.Contains("runs no command", plans[1].Password, StringComparison.Ordinal);
        Assert.Contains("export CLOUDSPOOL_SECRET_BY_COMMAND=", plans[1].Password, StringComparison.Ordinal);
        Assert.Null(plans[1].SecretValue);
        Assert.Equal("env:CLOUDSPOOL_SECRET_ASKED_FOR", plans[2].Definition.PasswordRef);
        Assert.All(plans, p => Assert.Null(Secrets.Check(p.Definition.PasswordRef)));

        var none = new List<string>();
        Assert.Empty(AccountImport.Plan([Account("x", ImportedPassword.None)], Secrets, null, none));
        Assert.Contains("give one with --mailbox", Assert.Single(none), StringComparison.Ordinal);
    }

    [Fact]
    public void Import_writes_the_secret_file_0600_in_a_0700_directory_once_and_never_over_another_secret()
    {
        var plan = AccountImport.Plan([Account("isp", new ImportedPassword(PasswordSource.Inline, "s3cret", 1))], Secrets, "alice", []).Single();

        Assert.Null(AccountImport.SecretConflict(plan));
        AccountImport.WriteSecret(plan);
        AccountImport.WriteSecret(plan); // again: the same secret is there, nothing changes

        Assert.Equal("s3cret", Secrets.Resolve(plan.Definition.PasswordRef));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(plan.SecretFile!));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Secrets.Directory));
        Assert.Single(Directory.GetFiles(Secrets.Directory));
        Assert.Null(AccountImport.SecretConflict(plan));
        Assert.Contains("holds another secret", AccountImport.SecretConflict(plan with { SecretValue = "other" }), StringComparison.Ordinal);
    }

    [Fact]
    public void Import_reads_each_tool_s_own_default_file_when_none_is_named()
    {
        var home = Path.Combine(_dir, "home");
        var config = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } xdg ? xdg : Path.Combine(home, ".config");
        Assert.Equal([Path.Combine(home, ".fetchmailrc")], AccountImport.DefaultFiles(ImportTool.Fetchmail, home));
        // mpop reads ~/.mpoprc when it exists, else its XDG file.
        Assert.Equal([Path.Combine(config, "mpop", "config")], AccountImport.DefaultFiles(ImportTool.Mpop, home));
        Directory.CreateDirectory(home);
        File.WriteAllText(Path.Combine(home, ".mpoprc"), "");
        Assert.Equal([Path.Combine(home, ".mpoprc")], AccountImport.DefaultFiles(ImportTool.Mpop, home));
        // getmail 6 reads its XDG directory first, then ~/.getmail.
        Assert.Equal([Path.Combine(home, ".getmail", "getmailrc")], AccountImport.DefaultFiles(ImportTool.Getmail, home));
    }
}
