using MailKit.Net.Pop3;

namespace CloudSpool.TestSupport.Soak;

/// <summary>
/// A mail client polling the edge the way real ones do, with MailKit: it remembers the UIDLs it has downloaded (so a
/// keeping client downloads each message once) and, when it deletes, sends DELE for every downloaded message and QUIT.
/// A session cut before QUIT's reply leaves its deletions pending: the messages come back (RFC 1939: nothing is deleted
/// without QUIT) and are deleted again without being downloaded again. What it records is checked at the end.
/// </summary>
public sealed class SoakPop3Client(string login, string password, string mailbox, bool deletes, Func<int> port)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _received = new(StringComparer.Ordinal);
    private readonly HashSet<string> _deleted = new(StringComparer.Ordinal);
    private readonly List<string> _violations = [];
    private readonly HashSet<string> _reappeared = new(StringComparer.Ordinal);

    public string Login => login;
    public string Mailbox => mailbox;
    public bool Deletes => deletes;
    public int Sessions { get; private set; }
    public int FailedSessions { get; private set; }
    public int Retrieved { get; private set; }
    public string? LastError { get; private set; }

    /// <summary>Messages listed in the last session that completed (its QUIT answered).</summary>
    public int LastListed { get; private set; } = -1;

    /// <summary>UIDL to SHA-256 of the bytes downloaded.</summary>
    public IReadOnlyDictionary<string, string> Received
    {
        get { lock (_lock) return new Dictionary<string, string>(_received, StringComparer.Ordinal); }
    }

    /// <summary>What went against POP3 or view semantics (a message deleted and QUIT confirmed that came back).</summary>
    public IReadOnlyList<string> Violations
    {
        get { lock (_lock) return [.. _violations]; }
    }

    /// <summary>Polls until cancelled, one session every <paramref name="interval"/>.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await SessionAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One session: log in, list, download what is new, delete (if it deletes), QUIT. False when it failed.</summary>
    public async Task<bool> SessionAsync(CancellationToken cancellationToken)
    {
        Sessions++;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout * 4);
        var ct = timeout.Token;
        var wire = new QuitReply();
        using var client = new Pop3Client(wire) { Timeout = (int)Timeout.TotalMilliseconds };
        var pending = new List<string>();
        try
        {
            await client.ConnectAsync("127.0.0.1", port(), MailKit.Security.SecureSocketOptions.None, ct).ConfigureAwait(false);
            await client.AuthenticateAsync(login, password, ct).ConfigureAwait(false);
            var uids = await client.GetMessageUidsAsync(ct).ConfigureAwait(false);
            for (var i = 0; i < uids.Count; i++)
            {
                var uid = uids[i];
                bool known;
                lock (_lock)
                {
                    if (_deleted.Contains(uid) && _reappeared.Add(uid))
                        _violations.Add($"{login}: {uid} was deleted (DELE, QUIT +OK) and is listed again (first at {DateTime.UtcNow:HH:mm:ss.f} UTC)");
                    known = _received.ContainsKey(uid);
                }
                if (!known)
                {
                    await using var stream = await client.GetStreamAsync(i, cancellationToken: ct).ConfigureAwait(false);
                    using var copy = new MemoryStream();
                    await stream.CopyToAsync(copy, ct).ConfigureAwait(false);
                    var sha = SoakMail.Hex(copy.GetBuffer().AsSpan(0, (int)copy.Length));
                    lock (_lock)
                        _received[uid] = sha;
                    Retrieved++;
                }
                if (deletes)
                {
                    await client.DeleteMessageAsync(i, ct).ConfigureAwait(false);
                    pending.Add(uid);
                }
            }
            // MailKit does not report QUIT's answer: the deletions count only when the wire says +OK (RFC 1939 section 6:
            // -ERR means some were not removed; no answer means the client cannot know).
            await client.DisconnectAsync(quit: true, ct).ConfigureAwait(false);
            var reply = wire.Reply;
            if (!reply.StartsWith("+OK", StringComparison.Ordinal))
            {
                FailedSessions++;
                LastError = "QUIT answered: " + (reply.Length == 0 ? "(nothing)" : reply);
                return false;
            }
            lock (_lock)
                _deleted.UnionWith(pending);
            LastListed = uids.Count;
            return true;
        }
        catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or OperationCanceledException
                                       or MailKit.ProtocolException or MailKit.CommandException or MailKit.Security.AuthenticationException
                                       or InvalidOperationException)
        {
            FailedSessions++;
            LastError = ex.GetType().Name + ": " + ex.Message;
            return false;
        }
    }
}

/// <summary>MailKit's protocol log, used for one thing: the server's answer to QUIT.</summary>
internal sealed class QuitReply : MailKit.IProtocolLogger
{
    private readonly System.Text.StringBuilder _afterQuit = new();
    private bool _quitSent;

    public MailKit.IAuthenticationSecretDetector? AuthenticationSecretDetector { get; set; }

    /// <summary>The first line the server sent after the client's QUIT, or empty.</summary>
    public string Reply
    {
        get
        {
            var text = _afterQuit.ToString();
            var end = text.IndexOf('\n', StringComparison.Ordinal);
            return (end < 0 ? text : text[..end]).TrimEnd('\r');
        }
    }

    public void LogConnect(Uri uri)
    {
    }

    public void LogClient(byte[] buffer, int offset, int count)
    {
        if (System.Text.Encoding.ASCII.GetString(buffer, offset, count).StartsWith("QUIT", StringComparison.OrdinalIgnoreCase))
            _quitSent = true;
    }

    public void LogServer(byte[] buffer, int offset, int count)
    {
        if (_quitSent && _afterQuit.Length < 512)
            _afterQuit.Append(System.Text.Encoding.Latin1.GetString(buffer, offset, Math.Min(count, 512)));
    }

    public void Dispose()
    {
    }
}
