using CloudSpool.Core.Forward;
using CloudSpool.Host.Configuration;

namespace CloudSpool.Host.Tests;

public sealed class ForwardConfigTests : ConfigFileTest
{
    private IReadOnlyList<string> Problems(string forwardJson) =>
        Assert.Throws<ConfigurationInvalidException>(() => ConfigLoader.Load(Write($$"""{ "Forward": {{forwardJson}} }"""))).Problems;

    private const string Base = """
        "Mailbox": "alice", "Sender": "cloudspool@home.example",
        "Destinations": [ { "Address": "phone@carrier.example", "MaxBytes": 102400, "KeepAttachmentTypes": [ "text/calendar" ] } ],
        "Smtp": { "Host": "smtp.example.net", "Port": 587, "Security": "starttls", "User": "me", "Password": "env:CLOUDSPOOL_SECRET_SMTP" }
        """;

    [Fact]
    public void Forwarding_is_off_by_default()
    {
        var forward = ConfigLoader.Load(null).Forward;
        Assert.False(forward.Configured);
        Assert.Equal("0 * * * * ?", forward.Schedule);
    }

    [Fact]
    public void A_full_forward_section_loads_and_its_rules_compile()
    {
        var forward = ConfigLoader.Load(Write($$"""
            { "Forward": { {{Base}},
              "Rules": [
                { "Name": "boss", "From": "*@work.example", "Action": "forward-trimmed" },
                { "Name": "news", "Headers": { "List-Id": "*news*" }, "Action": "skip" },
                { "Name": "big", "MinBytes": 5000000, "AttachmentType": "re:^image/", "Action": "skip" }
              ],
              "DefaultAction": "skip", "Schedule": "0 */2 * * * ?", "TimeZone": "Asia/Tokyo",
              "Windows": [ { "Days": "Mon-Fri", "Start": "09:00", "End": "18:00" } ] } }
            """)).Forward;
        Assert.True(forward.Configured);
        Assert.Equal(SmtpSecurity.StartTls, forward.Smtp.Security);
        Assert.Equal(3, forward.Rules.Count);
        Assert.Equal("*news*", forward.Rules[1].Headers["list-id"]);
        _ = ForwardRules.Compile(forward);
    }

    [Fact]
    public void Bad_rules_are_refused_naming_the_rule_by_index_and_name()
    {
        var problems = Problems($$"""
            { {{Base}}, "Rules": [
                { "Name": "ok", "From": "*", "Action": "skip" },
                { "Name": "bad regex", "Subject": "re:(unclosed", "Action": "skip" },
                { "Name": "bad action", "From": "*", "Action": "forward-everything" },
                { "Name": "empty", "Subject": "", "Action": "skip" },
                { "Name": "nothing", "Action": "skip" },
                { "From": "a@*", "Headers": { "List-Id": "re:" } },
                { "Name": "sizes", "MinBytes": 10, "MaxBytes": 5, "Action": "skip" }
            ] }
            """);
        Assert.Contains(problems, p => p.StartsWith("Forward:Rules[1]:Subject: rule [1] 'bad regex': Subject 're:(unclosed': Invalid pattern", StringComparison.Ordinal));
        Assert.Contains("Forward:Rules[2]:Action: rule [2] 'bad action': 'forward-everything' is not an action: expected forward-trimmed, forward-as-is or skip", problems);
        Assert.Contains("Forward:Rules[3]:Subject: rule [3] 'empty': Subject '': the pattern is empty", problems);
        Assert.Contains("Forward:Rules[4]: rule [4] 'nothing': no condition: a rule needs at least one (use \"From\": \"*\" to match every message)", problems);
        Assert.Contains("Forward:Rules[5]:Action: rule [5]: no action: expected forward-trimmed, forward-as-is or skip", problems);
        Assert.Contains("Forward:Rules[5]:Headers:List-Id: rule [5]: header List-Id 're:': the regular expression after 're:' is empty", problems);
        Assert.Contains(problems, p => p.StartsWith("Forward:Rules[6]:MinBytes: rule [6] 'sizes': MinBytes 10 is larger than MaxBytes 5", StringComparison.Ordinal));
        Assert.DoesNotContain(problems, p => p.Contains("'ok'", StringComparison.Ordinal));
    }

    [Fact]
    public void A_misspelt_rule_condition_is_refused_not_ignored()
    {
        var problems = Problems($$"""{ {{Base}}, "Rules": [ { "Name": "typo", "Sbject": "x", "Action": "skip" } ] }""");
        Assert.Contains(problems, p => p.StartsWith("Forward:Rules:0:Sbject: unknown setting", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_wrong_forward_setting_is_reported_with_its_path()
    {
        var problems = Problems("""
            { "Mailbox": "Alice!", "Sender": "not an address",
              "Destinations": [ { "Address": "phone", "MaxBytes": 100, "KeepAttachmentTypes": [ "pdf" ] } ],
              "DefaultAction": "maybe",
              "Smtp": { "Port": 70000, "Password": "hunter2" },
              "Schedule": "every minute", "TimeZone": "Mars/Olympus",
              "Windows": [ { "Days": "Weekdays", "Start": "9", "End": "18:00" } ],
              "MaxAttempts": 0, "LeaseDuration": "00:00:05" }
            """);
        foreach (var path in new[] { "Forward:Mailbox:", "Forward:Sender:", "Forward:Destinations[0]:Address:", "Forward:Destinations[0]:MaxBytes:",
            "Forward:Destinations[0]:KeepAttachmentTypes[0]:", "Forward:DefaultAction:", "Forward:Smtp:Host:", "Forward:Smtp:Port:",
            "Forward:Smtp:Password:", "Forward:Smtp:User:", "Forward:Schedule:", "Forward:TimeZone:", "Forward:Windows[0]:",
            "Forward:MaxAttempts:", "Forward:LeaseDuration:" })
            Assert.Contains(problems, p => p.StartsWith(path, StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("never the password itself", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unknown_tls_mode_is_refused()
    {
        var problems = Problems("""{ "Smtp": { "Security": "ssl-please" } }""");
        Assert.Contains(problems, p => p.Contains("Forward:Smtp:Security", StringComparison.Ordinal));
    }
}
