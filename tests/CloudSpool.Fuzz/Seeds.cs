using System.Text;

namespace CloudSpool.Fuzz;

/// <summary>
/// Writes seed inputs: every message of the corpus up to <see cref="MaxSeedBytes"/> for ingest and trim, and POP3
/// sessions (the transcripts of the protocol tests: log in, STAT/LIST/UIDL/RETR/TOP/DELE/RSET, AUTH PLAIN, errors) each
/// followed by a corpus message to serve. Run once to refresh tests/CloudSpool.Fuzz/seeds; the folders are committed.
/// </summary>
public static class Seeds
{
    /// <summary>Seeds stay small: AFL mutates small inputs much faster.</summary>
    public const int MaxSeedBytes = 8 * 1024;

    /// <summary>Client sides of POP3 sessions (CRLF added to each line).</summary>
    public static IReadOnlyList<(string Name, string[] Lines)> Sessions { get; } =
    [
        ("login-retr-quit", ["USER alice", "PASS secret", "STAT", "LIST", "UIDL", "RETR 1", "RETR 4", "QUIT"]),
        ("top-and-list-one", ["CAPA", "USER alice", "PASS secret", "LIST 2", "UIDL 4", "TOP 4 0", "TOP 2 1", "TOP 4 3", "QUIT"]),
        ("dele-rset-quit", ["USER alice", "PASS secret", "DELE 1", "DELE 1", "LIST", "RSET", "DELE 4", "STAT", "NOOP", "QUIT"]),
        ("auth-plain-initial", ["CAPA", "AUTH", "AUTH PLAIN " + Plain("", "alice", "secret"), "STAT", "RETR 3", "QUIT"]),
        ("auth-plain-challenge", ["AUTH PLAIN", Plain("alice", "alice", "secret"), "UIDL", "RETR 4", "QUIT"]),
        ("auth-cancel-and-errors", ["AUTH PLAIN", "*", "PASS secret", "USER", "STLS", "APOP alice 0123456789abcdef0123456789abcdef", "RETR 1", "bogus", "QUIT"]),
        ("wrong-password-then-right", ["USER alice", "PASS wrong", "USER alice", "PASS secret", "LIST 9", "RETR 0", "TOP 1", "TOP 1 x", "DELE 99", "QUIT"]),
        ("lowercase-and-bare-lf", ["user alice", "pass secret", "stat", "list", "retr 2", "top 4 2", "quit"]),
        ("dropped-in-transaction", ["USER alice", "PASS secret", "DELE 2", "RETR 4"]),
    ];

    public static void Write(string corpus, string output)
    {
        var messages = Directory.GetFiles(corpus)
            .Where(f => Path.GetFileName(f) != "LICENSE" && new FileInfo(f).Length <= MaxSeedBytes)
            .Order(StringComparer.Ordinal).ToList();
        foreach (var target in new[] { "ingest", "trim" })
        {
            var folder = Directory.CreateDirectory(Path.Combine(output, target)).FullName;
            foreach (var message in messages)
                File.Copy(message, Path.Combine(folder, Path.GetFileName(message)), overwrite: true);
        }
        var pop3 = Directory.CreateDirectory(Path.Combine(output, "pop3")).FullName;
        for (var i = 0; i < Sessions.Count; i++)
        {
            var (name, lines) = Sessions[i];
            var newline = name.Contains("bare-lf", StringComparison.Ordinal) ? "\n" : "\r\n";
            var client = Encoding.UTF8.GetBytes(string.Concat(lines.Select(l => l + newline)));
            var message = File.ReadAllBytes(messages[i * 3 % messages.Count]);
            File.WriteAllBytes(Path.Combine(pop3, name + ".bin"), [.. client, 0, .. message]);
        }
    }

    private static string Plain(string authzid, string authcid, string password) =>
        Convert.ToBase64String(Encoding.UTF8.GetBytes(authzid + "\0" + authcid + "\0" + password));
}
