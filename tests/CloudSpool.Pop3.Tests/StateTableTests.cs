using CloudSpool.Pop3.Engine;
using CloudSpool.Pop3.Tests.Support;

namespace CloudSpool.Pop3.Tests;

/// <summary>The declarative state table, and every verb sent in every state it is not valid in.</summary>
public sealed class StateTableTests
{
    private static readonly Pop3State[] States = [Pop3State.Authorization, Pop3State.AwaitingPassword, Pop3State.Transaction];

    private static IEnumerable<string> ValidIn(Pop3State state) =>
        Pop3StateTable.Verbs.Where(v => v.ValidIn.HasFlag(state)).Select(v => v.Name).Order(StringComparer.Ordinal);

    [Fact]
    public void Each_state_allows_exactly_the_rfc_1939_and_extension_commands()
    {
        Assert.Equal(["APOP", "AUTH", "CAPA", "QUIT", "STLS", "USER"], ValidIn(Pop3State.Authorization));
        Assert.Equal(["CAPA", "PASS", "QUIT", "USER"], ValidIn(Pop3State.AwaitingPassword));
        Assert.Equal(["CAPA", "DELE", "LIST", "NOOP", "QUIT", "RETR", "RSET", "STAT", "TOP", "UIDL"], ValidIn(Pop3State.Transaction));
        Assert.Empty(ValidIn(Pop3State.Update));
    }

    [Fact]
    public void Logins_lead_to_transaction_and_quit_always_closes()
    {
        foreach (var name in new[] { "PASS", "APOP", "AUTH" })
            Assert.Equal(Pop3State.Transaction, Pop3StateTable.Verbs.Single(v => v.Name == name).OnSuccess);
        var quit = Pop3StateTable.Verbs.Single(v => v.Name == "QUIT");
        Assert.Equal((Pop3State.Closed, Pop3State.Closed), (quit.OnSuccess, quit.OnFailure));
        Assert.Equal(Pop3State.Authorization, Pop3StateTable.Verbs.Single(v => v.Name == "PASS").OnFailure);
    }

    public static TheoryData<string, string> RefusedPairs()
    {
        var data = new TheoryData<string, string>();
        foreach (var verb in Pop3StateTable.Verbs)
        {
            foreach (var state in States)
            {
                if (!verb.ValidIn.HasFlag(state))
                    data.Add(verb.Name, state.ToString());
            }
        }
        return data;
    }

    private static string SampleArguments(string verb) => verb switch
    {
        "USER" => " alice",
        "PASS" => " secret",
        "APOP" => " alice 0123456789abcdef0123456789abcdef",
        "AUTH" => " PLAIN AGFsaWNlAHNlY3JldA==",
        "RETR" or "DELE" => " 1",
        "TOP" => " 1 0",
        _ => "",
    };

    [Theory]
    [MemberData(nameof(RefusedPairs))]
    public async Task Verb_sent_in_a_state_it_is_not_valid_in_is_refused_with_the_generated_message(string verb, string stateName)
    {
        var state = Enum.Parse<Pop3State>(stateName);
        var authenticator = new FakeAuthenticator((SessionHarness.User, SessionHarness.Password)) { SupportsApop = true };
        await using var h = await SessionHarness.StartAsync(o => o.Certificate = TestCertificates.Localhost, authenticator);
        if (state == Pop3State.AwaitingPassword)
            await h.ExpectAsync("USER alice", "+OK send PASS");
        if (state == Pop3State.Transaction)
            await h.LoginAsync();
        var row = Pop3StateTable.Verbs.Single(v => v.Name == verb);
        await h.ExpectAsync(verb + SampleArguments(verb), "-ERR " + row.Rejection(state));
        // Nothing happened: no new login attempt, no message opened, nothing deleted.
        Assert.Equal(state == Pop3State.Transaction ? 1 : 0, h.Authenticator.Attempts.Count);
        Assert.Empty(h.Authenticator.ApopAttempts);
        Assert.All(h.Maildrops.Opened, m => Assert.Empty(m.OpenedIndexes));
    }
}
