using System.Collections.Concurrent;
using CloudSpool.Pop3;

namespace CloudSpool.TestSupport.Pop3;

/// <summary>A stored message for the fake maildrop.</summary>
public sealed record FakeMessage(string Uidl, byte[] Bytes)
{
    /// <summary>Replaces the stored stream (to make a message fail).</summary>
    public Func<Stream>? Open { get; init; }

    public long Pop3Size { get; } = Wire.Pop3Size(Bytes);
}

/// <summary>A fake user store: name → password; records every attempt.</summary>
public sealed class FakeAuthenticator : IPop3Authenticator
{
    private readonly ConcurrentDictionary<string, string> _users = new(StringComparer.Ordinal);

    public FakeAuthenticator(params (string User, string Password)[] users)
    {
        foreach (var (user, password) in users)
            _users[user] = password;
    }

    public bool SupportsApop { get; init; }

    /// <summary>When set, every attempt gets this answer.</summary>
    public Func<Pop3AuthResult>? Override { get; set; }

    public ConcurrentQueue<Pop3Credentials> Attempts { get; } = new();

    public ConcurrentQueue<string> ApopAttempts { get; } = new();

    public ValueTask<Pop3AuthResult> AuthenticateAsync(Pop3Credentials credentials, CancellationToken cancellationToken)
    {
        Attempts.Enqueue(credentials);
        if (Override is not null)
            return ValueTask.FromResult(Override());
        if (credentials.AuthorizationIdentity is { } authzid && authzid != credentials.UserName)
            return ValueTask.FromResult(Pop3AuthResult.Failed);
        var ok = _users.TryGetValue(credentials.UserName, out var password) && password == credentials.Password;
        return ValueTask.FromResult(ok ? Pop3AuthResult.Success(new Pop3Identity(credentials.UserName)) : Pop3AuthResult.Failed);
    }

    public ValueTask<Pop3AuthResult> AuthenticateApopAsync(
        string userName, string timestamp, string digest, Pop3ConnectionInfo connection, CancellationToken cancellationToken)
    {
        ApopAttempts.Enqueue(userName);
        var ok = _users.TryGetValue(userName, out var password) && ApopDigest.Matches(timestamp, password, digest);
        return ValueTask.FromResult(ok ? Pop3AuthResult.Success(new Pop3Identity(userName)) : Pop3AuthResult.Failed);
    }
}

/// <summary>
/// Fake maildrops: one mailbox per user name. Each session gets a snapshot; a commit removes the committed
/// messages from the mailbox, so the next session sees the deletion.
/// </summary>
public sealed class FakeMaildropProvider : IMaildropProvider
{
    private readonly ConcurrentDictionary<string, List<FakeMessage>> _mailboxes = new(StringComparer.Ordinal);

    public FakeMaildropProvider Add(string user, IEnumerable<FakeMessage> messages)
    {
        _mailboxes[user] = [.. messages];
        return this;
    }

    /// <summary>When set, every open gets this answer (or throws what it throws).</summary>
    public Func<Pop3MaildropResult>? Override { get; set; }

    /// <summary>Makes CommitDeletesAsync of the maildrops opened from now on throw.</summary>
    public Exception? CommitFailure { get; set; }

    public ConcurrentQueue<FakeMaildrop> Opened { get; } = new();

    public IReadOnlyList<FakeMessage> Mailbox(string user)
    {
        lock (_mailboxes[user])
            return [.. _mailboxes[user]];
    }

    public ValueTask<Pop3MaildropResult> OpenAsync(Pop3Identity identity, CancellationToken cancellationToken)
    {
        if (Override is not null)
            return ValueTask.FromResult(Override());
        var mailbox = _mailboxes.GetOrAdd(identity.Name, _ => []);
        List<FakeMessage> snapshot;
        lock (mailbox)
            snapshot = [.. mailbox];
        var maildrop = new FakeMaildrop(snapshot, committed =>
        {
            lock (mailbox)
                mailbox.RemoveAll(m => committed.Contains(m));
        })
        { CommitFailure = CommitFailure };
        Opened.Enqueue(maildrop);
        return ValueTask.FromResult(Pop3MaildropResult.Opened(maildrop));
    }
}

/// <summary>One session's snapshot; records what the session did to it.</summary>
public sealed class FakeMaildrop(IReadOnlyList<FakeMessage> messages, Action<IReadOnlyList<FakeMessage>>? onCommit = null) : IMaildrop
{
    public IReadOnlyList<Pop3MessageInfo> Messages { get; } = [.. messages.Select(m => new Pop3MessageInfo(m.Uidl, m.Pop3Size))];

    public Exception? CommitFailure { get; init; }

    /// <summary>Every set passed to CommitDeletesAsync (at most one is expected).</summary>
    public ConcurrentQueue<int[]> Commits { get; } = new();

    public ConcurrentQueue<int> OpenedIndexes { get; } = new();

    /// <summary>Each open with the messages the session said were asked for after it (see IMaildrop.OpenAsync).</summary>
    public ConcurrentQueue<(int Index, int[] Upcoming)> OpenedWithUpcoming { get; } = new();

    public bool Disposed { get; private set; }

    public ValueTask<Stream> OpenAsync(int index, CancellationToken cancellationToken)
    {
        OpenedIndexes.Enqueue(index);
        var message = messages[index];
        return ValueTask.FromResult(message.Open?.Invoke() ?? new MemoryStream(message.Bytes, writable: false));
    }

    public ValueTask<Stream> OpenAsync(int index, IReadOnlyList<int> upcoming, CancellationToken cancellationToken)
    {
        OpenedWithUpcoming.Enqueue((index, [.. upcoming]));
        return OpenAsync(index, cancellationToken);
    }

    public ValueTask CommitDeletesAsync(IReadOnlySet<int> indexes, CancellationToken cancellationToken)
    {
        if (Disposed)
            throw new InvalidOperationException("commit after dispose");
        Commits.Enqueue([.. indexes.Order()]);
        if (CommitFailure is not null)
            throw CommitFailure;
        onCommit?.Invoke([.. indexes.Select(i => messages[i])]);
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }
}

/// <summary>What the stored-message test streams share: read-only, forward-only, the position counting what was read.</summary>
public abstract class ReadOnlyTestStream : Stream
{
    /// <summary>Bytes read so far.</summary>
    protected int Consumed { get; set; }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Position { get => Consumed; set => throw new NotSupportedException(); }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>A stored message stream that yields some bytes and then fails, or fails at once.</summary>
public sealed class FailingStream(byte[] prefix, int failAfter) : ReadOnlyTestStream
{
    public override long Length => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (Consumed >= failAfter)
            throw new IOException("the blob went away");
        var n = Math.Min(count, Math.Min(failAfter, prefix.Length) - Consumed);
        if (n <= 0)
            throw new IOException("the blob went away");
        Array.Copy(prefix, Consumed, buffer, offset, n);
        Consumed += n;
        return n;
    }
}

/// <summary>A stored message stream that returns at most a few bytes per read, to cross every chunk boundary.</summary>
public sealed class TrickleStream(byte[] data, int maxRead) : ReadOnlyTestStream
{
    public override long Length => data.Length;

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = Math.Min(Math.Min(count, maxRead), data.Length - Consumed);
        Array.Copy(data, Consumed, buffer, offset, n);
        Consumed += n;
        return n;
    }
}

/// <summary>
/// A stored message stream that waits <paramref name="pause"/> before each read (a slow store), or, once
/// <paramref name="hangAfter"/> bytes were read, never answers again (until the read is cancelled).
/// </summary>
public sealed class PausingStream(byte[] data, int maxRead, TimeSpan pause, int hangAfter = int.MaxValue) : ReadOnlyTestStream
{
    public override long Length => data.Length;

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("read asynchronously");

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Task.Delay(Consumed >= hangAfter ? Timeout.InfiniteTimeSpan : pause, cancellationToken);
        var n = Math.Min(Math.Min(buffer.Length, maxRead), data.Length - Consumed);
        data.AsMemory(Consumed, n).CopyTo(buffer);
        Consumed += n;
        return n;
    }
}
