using System.Collections.Frozen;
using CloudSpool.Pop3.Commands;

namespace CloudSpool.Pop3.Engine;

/// <summary>One row of the state table: a verb, where it is valid, and where it leads.</summary>
/// <param name="Name">The keyword (RFC 1939 section 3: case-insensitive).</param>
/// <param name="Handler">The verb's handler.</param>
/// <param name="ValidIn">The states the verb is valid in.</param>
/// <param name="OnSuccess">The next state when the handler succeeds.</param>
/// <param name="OnFailure">The next state when the handler refuses.</param>
/// <param name="Requires">A precondition beyond the state.</param>
internal sealed record Pop3Verb(
    string Name, IPop3Command Handler, Pop3State ValidIn, Pop3State OnSuccess, Pop3State OnFailure, Pop3Requirement Requires)
{
    private readonly string _rejection = Name + " is valid only " + Describe(ValidIn);

    /// <summary>The refusal for this verb in <paramref name="state"/>, where it is not valid; generated from <see cref="ValidIn"/>.</summary>
    public string Rejection(Pop3State state) =>
        state == Pop3State.AwaitingPassword && ValidIn.HasFlag(Pop3State.Authorization)
            ? Name + " is not valid right after USER (PASS expected)"
            : _rejection;

    private static string Describe(Pop3State states) => states switch
    {
        _ when states.HasFlag(Pop3State.Authorization) => "before login",
        _ when states.HasFlag(Pop3State.AwaitingPassword) => "right after USER",
        _ => "after login",
    };
}

/// <summary>
/// The declarative state machine of a session (RFC 1939 sections 3-7, RFC 2449, RFC 2595, RFC 5034): which verb is
/// valid in which state, and the next state after it succeeds or is refused. The session rejects everything the
/// table does not allow, with a message generated from it; handlers never check the state.
/// </summary>
internal static class Pop3StateTable
{
    private const Pop3State PreLogin = Pop3State.Authorization | Pop3State.AwaitingPassword;
    private const Pop3State Any = PreLogin | Pop3State.Transaction;
    private const Pop3State Same = Pop3State.Unchanged;

    private static readonly Pop3Verb[] Rows =
    [
        //  verb                                           valid in                     on success                  on failure               requires
        new(CapaCommand.Command, new CapaCommand(),        Any,                         Same,                       Same,                    Pop3Requirement.None),
        new(QuitCommand.Command, new QuitCommand(),        Any,                         Pop3State.Closed,           Pop3State.Closed,        Pop3Requirement.None),
        new(StlsCommand.Command, new StlsCommand(),        Pop3State.Authorization,     Pop3State.Authorization,    Same,                    Pop3Requirement.Stls),
        new(UserCommand.Command, new UserCommand(),        PreLogin,                    Pop3State.AwaitingPassword, Pop3State.Authorization, Pop3Requirement.PasswordAllowed),
        new(PassCommand.Command, new PassCommand(),        Pop3State.AwaitingPassword,  Pop3State.Transaction,      Pop3State.Authorization, Pop3Requirement.PasswordAllowed),
        new(ApopCommand.Command, new ApopCommand(),        Pop3State.Authorization,     Pop3State.Transaction,      Same,                    Pop3Requirement.Apop),
        new(AuthCommand.Command, new AuthCommand(),        Pop3State.Authorization,     Pop3State.Transaction,      Same,                    Pop3Requirement.PasswordAllowed),
        new(StatCommand.Command, new StatCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(ListCommand.Command, new ListCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(UidlCommand.Command, new UidlCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(RetrCommand.Command, new RetrCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(TopCommand.Command,  new TopCommand(),         Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(DeleCommand.Command, new DeleCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(RsetCommand.Command, new RsetCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
        new(NoopCommand.Command, new NoopCommand(),        Pop3State.Transaction,       Same,                       Same,                    Pop3Requirement.None),
    ];

    private static readonly FrozenDictionary<string, Pop3Verb> ByName =
        Rows.ToFrozenDictionary(row => row.Name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Every verb, for tests and documentation.</summary>
    public static IReadOnlyList<Pop3Verb> Verbs => Rows;

    /// <summary>Finds a verb by keyword, any case.</summary>
    public static bool TryGetVerb(string keyword, out Pop3Verb verb) => ByName.TryGetValue(keyword, out verb!);
}
