using System.Text;
using CloudSpool.Core.Forward;
using CloudSpool.Core.Ingest;

namespace CloudSpool.Core.Tests.Forward;

public sealed class ForwardRulesTests
{
    private static ForwardOptions Options(string defaultAction = "forward-trimmed", params ForwardRuleDefinition[] rules) => new()
    {
        Mailbox = "alice",
        Sender = "cloudspool@home.example",
        Destinations = [new ForwardDestination { Address = "phone@carrier.example" }],
        Rules = [.. rules],
        DefaultAction = defaultAction,
    };

    private static ForwardDecision Decide(ForwardOptions options, string headers, string body = "hello\r\n", string account = "isp")
    {
        var raw = Encoding.UTF8.GetBytes(headers.ReplaceLineEndings("\r\n") + "\r\n" + body);
        var source = ForwardSource.Load(new MemoryStream(raw));
        return ForwardRules.Compile(options).Decide(ForwardFacts.Create(source, account, raw.Length, null));
    }

    private const string Plain = "From: Boss <boss@work.example>\nTo: alice@home.example\nSubject: Quarterly invoice\n";

    [Fact]
    public void Ordinary_mail_gets_the_default_action_with_a_reason()
    {
        var decision = Decide(Options(), Plain);
        Assert.Equal(ForwardAction.ForwardTrimmed, decision.Action);
        Assert.Equal("no rule matched: forward-trimmed (Forward:DefaultAction)", decision.Reason);
        Assert.Equal(ForwardAction.Skip, Decide(Options("skip"), Plain).Action);
    }

    [Fact]
    public void CloudSpools_own_health_alerts_reach_the_phone_though_they_are_automatic_mail()
    {
        var alert = new Health.AlertRecord { Account = "isp", Condition = "failing", Mailbox = "alice", RaisedAt = DateTimeOffset.UnixEpoch, Text = "broken" };
        var raw = Health.AlertMail.Raised(alert);
        var options = Options("skip", new ForwardRuleDefinition { Name = "nothing", Subject = "never matches", Action = "forward-as-is" });
        var decision = ForwardRules.Compile(options).Decide(ForwardFacts.Create(ForwardSource.Load(new MemoryStream(raw)), Health.HealthRunner.AlertSource, raw.Length, null));
        Assert.Equal(ForwardAction.ForwardTrimmed, decision.Action);
        Assert.Contains("health alert", decision.Reason);

        // The same bytes arriving from an upstream account are just automatic mail.
        var upstream = ForwardRules.Compile(options).Decide(ForwardFacts.Create(ForwardSource.Load(new MemoryStream(raw)), "isp", raw.Length, null));
        Assert.Equal(ForwardAction.Skip, upstream.Action);
        Assert.Contains("automatic", upstream.Reason);
    }

    [Fact]
    public void First_matching_rule_wins()
    {
        var options = Options("skip",
            new ForwardRuleDefinition { Name = "invoices as is", Subject = "invoice", Action = "forward-as-is" },
            new ForwardRuleDefinition { Name = "boss", From = "*@work.example", Action = "forward-trimmed" });
        var decision = Decide(options, Plain);
        Assert.Equal(ForwardAction.ForwardAsIs, decision.Action);
        Assert.Equal((0, "invoices as is"), (decision.RuleIndex!.Value, decision.RuleName!));
        Assert.Equal("rule [0] 'invoices as is' matched (subject ~ invoice): forward-as-is", decision.Reason);

        decision = Decide(options, Plain.Replace("invoice", "report", StringComparison.Ordinal));
        Assert.Equal("rule [1] 'boss' matched (from ~ *@work.example): forward-trimmed", decision.Reason);
    }

    [Theory]
    [InlineData("boss@work.example", true)]
    [InlineData("*@work.example", true)]
    [InlineData("*@WORK.example", true)]
    [InlineData("*@example", false)]        // a wildcard matches the whole value
    [InlineData("work.exa", true)]          // a substring anywhere
    [InlineData("Boss <boss@*", true)]      // display name and address together
    [InlineData("re:^boss@work\\.example$", true)]
    [InlineData("re:^other", false)]
    public void Sender_patterns(string pattern, bool matches)
    {
        var options = Options("skip", new ForwardRuleDefinition { From = pattern, Action = "forward-trimmed" });
        Assert.Equal(matches, Decide(options, Plain).Forwards);
    }

    [Fact]
    public void Conditions_on_recipient_header_account_size_and_attachments_all_must_match()
    {
        const string withPdf = "From: a@b.example\nTo: x@y.example\nCc: alice+work@home.example\nX-Mailer: Outlook 16\nSubject: s\n" +
            "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n";
        const string body = "--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf; name=proof.pdf\r\n" +
            "Content-Disposition: attachment; filename=proof.pdf\r\n\r\nJVBERi0=\r\n--b--\r\n";
        ForwardDecision Try(Action<ForwardRuleDefinition> set, string account = "isp")
        {
            var rule = new ForwardRuleDefinition { Action = "forward-trimmed" };
            set(rule);
            return Decide(Options("skip", rule), withPdf, body, account);
        }

        Assert.True(Try(r => r.To = "alice+work@*").Forwards);
        Assert.False(Try(r => r.To = "bob@*").Forwards);
        Assert.True(Try(r => r.Headers["x-mailer"] = "re:^outlook \\d+").Forwards);
        Assert.False(Try(r => r.Headers["X-Mailer"] = "Thunderbird").Forwards);
        Assert.False(Try(r => r.Headers["X-Missing"] = "*").Forwards);
        Assert.True(Try(r => r.Account = "isp").Forwards);
        Assert.False(Try(r => r.Account = "isp", account: "webmail").Forwards);
        Assert.True(Try(r => r.MinBytes = 100).Forwards);
        Assert.False(Try(r => r.MaxBytes = 100).Forwards);
        Assert.True(Try(r => r.HasAttachments = true).Forwards);
        Assert.True(Try(r => r.AttachmentType = "application/pdf").Forwards);
        Assert.True(Try(r => r.AttachmentType = "*.pdf").Forwards);
        Assert.False(Try(r => r.AttachmentType = "image/*").Forwards);
        Assert.False(Try(r => { r.HasAttachments = true; r.From = "nobody@*"; }).Forwards);
        Assert.False(Decide(Options("skip", new ForwardRuleDefinition { HasAttachments = true, Action = "forward-trimmed" }), Plain).Forwards);
    }

    [Theory]
    [InlineData("Precedence: bulk\n", "Precedence: bulk")]
    [InlineData("Precedence: list\n", "Precedence: list")]
    [InlineData("Precedence: junk\n", "Precedence: junk")]
    [InlineData("Auto-Submitted: auto-generated\n", "Auto-Submitted: auto-generated")]
    [InlineData("Auto-Submitted: auto-replied; owner-email=x@y\n", "Auto-Submitted: auto-replied")]
    [InlineData("List-Id: News <news.example.org>\n", "List-Id: News <news.example.org>")]
    public void Automatic_and_bulk_mail_is_not_forwarded_unless_a_rule_asks(string header, string because)
    {
        var catchAll = new ForwardRuleDefinition { Name = "all", From = "*", Action = "forward-trimmed" };
        var decision = Decide(Options("forward-trimmed", catchAll), Plain + header);
        Assert.Equal(ForwardAction.Skip, decision.Action);
        Assert.Equal($"automatic or bulk mail ({because}): not forwarded unless a rule asks for it (\"Automatic\": true)", decision.Reason);

        var asks = new ForwardRuleDefinition { Name = "news too", From = "*", Automatic = true, Action = "forward-trimmed" };
        Assert.Equal(ForwardAction.ForwardTrimmed, Decide(Options("skip", asks), Plain + header).Action);
    }

    [Fact]
    public void A_rule_naming_list_id_asks_for_list_mail_and_skip_rules_apply_to_it()
    {
        const string list = Plain + "List-Id: Dev <dev.example.org>\n";
        var byList = new ForwardRuleDefinition { Headers = { ["List-Id"] = "*dev.example.org*" }, Action = "forward-trimmed" };
        Assert.True(Decide(Options("skip", byList), list).Forwards);

        var skip = new ForwardRuleDefinition { Name = "no boss", From = "boss@*", Action = "skip" };
        Assert.Equal("rule [0] 'no boss' matched (from ~ boss@*): skip", Decide(Options("forward-trimmed", skip), list).Reason);

        Assert.False(Decide(Options("skip", new ForwardRuleDefinition { Automatic = false, Action = "forward-trimmed" }), list).Forwards);
        Assert.True(Decide(Options("skip", new ForwardRuleDefinition { Automatic = false, Action = "forward-trimmed" }), Plain).Forwards);
        Assert.Equal(ForwardAction.Skip, Decide(Options("skip"), Plain + "Auto-Submitted: no\nPrecedence: normal\n").Action);
        Assert.True(Decide(Options(), Plain + "Auto-Submitted: no\nPrecedence: normal\n").Forwards);
    }

    [Fact]
    public void Mail_from_a_forwarding_address_or_carrying_the_loop_header_is_never_forwarded()
    {
        var everything = new ForwardRuleDefinition { From = "*", Automatic = true, Action = "forward-as-is" };
        var fromPhone = Decide(Options("forward-trimmed", everything), "From: Me <PHONE@carrier.example>\nSubject: note to self\n");
        Assert.Equal(ForwardAction.Skip, fromPhone.Action);
        Assert.Equal("from PHONE@carrier.example, a forwarding address itself: never forwarded (no loops)", fromPhone.Reason);

        Assert.False(Decide(Options("forward-trimmed", everything), "From: cloudspool@home.example\nSubject: x\n").Forwards);

        var looped = Decide(Options("forward-trimmed", everything), Plain + ForwardTrimmer.LoopHeader + ": m:1\n");
        Assert.Equal(ForwardAction.Skip, looped.Action);
        Assert.Contains("already forwarded by CloudSpool", looped.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_regular_expression_that_runs_too_long_is_passed_over_and_said()
    {
        var evil = new ForwardRuleDefinition { Name = "evil", Subject = @"re:^(\w+\s?)*$", Action = "forward-as-is" };
        var subject = string.Concat(Enumerable.Repeat("word ", 40)) + "!";
        var decision = Decide(Options("forward-trimmed", evil), $"From: a@b.example\nSubject: {subject}\n");
        Assert.Equal(ForwardAction.ForwardTrimmed, decision.Action);
        Assert.Contains("rule [0] 'evil' was passed over: its regular expression took longer than 200 ms", decision.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unparseable_message_is_judged_from_its_ingest_summary()
    {
        var source = ForwardSource.Load(new MemoryStream("\0\0\0"u8.ToArray()));
        var summary = new MessageSummary { From = "news@list.example", Precedence = "bulk", Malformed = true };
        var decision = ForwardRules.Compile(Options()).Decide(ForwardFacts.Create(source, "isp", 3, summary));
        Assert.Equal("automatic or bulk mail (Precedence: bulk): not forwarded unless a rule asks for it (\"Automatic\": true)", decision.Reason);
    }

    [Fact]
    public void Rules_on_any_header_apply_to_a_message_too_costly_to_parse()
    {
        // Found by the soak: a rule skipping mail with a header of its own did not see that header in a message whose
        // To: is folded over thousands of lines (not parsed at all), and the message went to the phone.
        var headers = "X-Corpus: yes\nX-Note: first part\n second part\n" + MessageSummarizerTests.FoldedTo(20_000).Replace("\r\n", "\n", StringComparison.Ordinal);
        var raw = Encoding.UTF8.GetBytes(headers.ReplaceLineEndings("\r\n"));
        var source = ForwardSource.Load(new MemoryStream(raw));
        Assert.Null(source.Message);
        var skipCorpus = new ForwardRuleDefinition { Name = "corpus", Action = "skip" };
        skipCorpus.Headers["X-Corpus"] = "*";
        var joined = new ForwardRuleDefinition { Name = "joined", Action = "forward-as-is" };
        joined.Headers["X-Note"] = "first part second part";

        var facts = ForwardFacts.Create(source, "isp", raw.Length, null);

        Assert.Equal((ForwardAction.Skip, "corpus"), (ForwardRules.Compile(Options("forward-trimmed", skipCorpus)).Decide(facts) is var d ? (d.Action, d.RuleName) : default));
        Assert.Equal(ForwardAction.ForwardAsIs, ForwardRules.Compile(Options("skip", joined)).Decide(facts).Action);
        // The folded field itself is read, cut at 4,096 characters.
        Assert.InRange(Assert.Single(facts.Header("To")).Length, 1000, 4096);
    }

    [Theory]
    [InlineData("Mon-Fri", "09:00", "18:00", "2026-11-30T09:00", true)]   // Monday
    [InlineData("Mon-Fri", "09:00", "18:00", "2026-11-30T18:00", false)]
    [InlineData("Mon-Fri", "09:00", "18:00", "2026-11-29T12:00", false)]  // Sunday
    [InlineData("Sat,Sun", "00:00", "24:00", "2026-11-29T23:59", true)]
    [InlineData("Fri-Mon", "22:00", "06:00", "2026-11-28T05:00", true)]   // Saturday morning, from Friday night
    [InlineData("Fri", "22:00", "06:00", "2026-11-29T05:00", false)]      // Sunday morning: Saturday is not listed
    public void Weekly_windows(string days, string start, string end, string local, bool inside)
    {
        Assert.True(ForwardWindow.TryParse(new ForwardWindowOptions { Days = days, Start = start, End = end }, out var window, out var error), error);
        Assert.Equal(inside, window!.Contains(DateTime.Parse(local, System.Globalization.CultureInfo.InvariantCulture)));
    }
}
