namespace CloudSpool.Pop3.Engine;

/// <summary>The login of a session: AUTHORIZATION to TRANSACTION (USER/PASS, APOP and AUTH all end here).</summary>
internal sealed partial class Pop3Session
{
    // ---- login ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Runs an authentication and, when it succeeds, opens the maildrop and enters TRANSACTION. Answers every
    /// outcome: a failure with [AUTH] after a delay that grows with the recent failures from the client's address
    /// (counted as a bad command; see <see cref="LoginThrottle"/>), an address locked out after too many
    /// failures with [SYS/TEMP] before any credential is checked (and the session ends), the maildrop in use with
    /// [IN-USE], anything unavailable with [SYS/TEMP] (RFC 3206).
    /// </summary>
    public async ValueTask<bool> LogInAsync(
        string userName, string mechanism, Func<CancellationToken, ValueTask<Pop3AuthResult>> authenticate, CancellationToken cancellationToken)
    {
        // Admitted before any credential is checked: a guess in flight counts toward the address's limit.
        using var attempt = await _context.LoginPenalties
            .EnterAsync(_remote?.Address, userName.ToLowerInvariant(), cancellationToken).ConfigureAwait(false);
        if (attempt.Refusal is { } refusal)
        {
            // Not even a correct password is accepted: otherwise the lockout would only slow the guessing down.
            Pop3Log.LoginLockedOut(_context.Logger, SessionId, _remote, userName, refusal.Left);
            Err($"[SYS/TEMP] too many failed logins from your address; try again in {Describe(refusal.Left)}");
            Close();
            return false;
        }

        Pop3AuthResult result;
        try
        {
            result = await authenticate(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.AuthenticationUnavailable(_context.Logger, ex, SessionId, userName, ex.GetType().Name);
            Err("[SYS/TEMP] authentication is temporarily unavailable; try again later");
            return false;
        }

        switch (result.Status)
        {
            case Pop3AuthStatus.Succeeded:
                // Clears this user's failures at this address only, never the address's record of other users.
                attempt.Succeeded();
                break;
            case Pop3AuthStatus.TemporaryFailure:
                Pop3Log.AuthenticationUnavailable(_context.Logger, null, SessionId, userName, result.Reason);
                Err("[SYS/TEMP] authentication is temporarily unavailable; try again later");
                return false;
            default:
                var penalty = attempt.Failed();
                Pop3Log.LoginFailed(_context.Logger, SessionId, _remote, userName, mechanism, penalty.RecentFailures, penalty.Delay);
                if (penalty.Lockout > TimeSpan.Zero)
                    Pop3Log.AddressLockedOut(_context.Logger, _remote, penalty.RecentFailures, penalty.Lockout);
                if (penalty.Delay > TimeSpan.Zero)
                {
                    // Replies queued for earlier pipelined commands go out before the delay.
                    await _connection.FlushAsync(cancellationToken).ConfigureAwait(false);
                    await Task.Delay(penalty.Delay, _context.Options.TimeProvider, cancellationToken).ConfigureAwait(false);
                }
                if (penalty.Lockout > TimeSpan.Zero)
                {
                    Err($"[AUTH] invalid user name or password; too many failed logins from your address, try again in {Describe(penalty.Lockout)}");
                    Close();
                    return false;
                }
                Reject("[AUTH] invalid user name or password");
                return false;
        }

        var identity = result.Identity!;
        Pop3MaildropResult opened;
        try
        {
            opened = await _context.Maildrops.OpenAsync(identity, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.MaildropUnavailable(_context.Logger, ex, SessionId, identity.Name, ex.GetType().Name);
            Err("[SYS/TEMP] the maildrop is temporarily unavailable; try again later");
            return false;
        }
        switch (opened.Status)
        {
            case Pop3MaildropStatus.Opened:
                break;
            case Pop3MaildropStatus.InUse:
                Pop3Log.MaildropInUse(_context.Logger, SessionId, identity.Name);
                Err("[IN-USE] the maildrop is in use by another session");
                return false;
            case Pop3MaildropStatus.PermanentlyUnavailable:
                // RFC 3206 section 4: a problem that is unlikely to go away without someone fixing it.
                Pop3Log.MaildropUnavailable(_context.Logger, null, SessionId, identity.Name, opened.Reason);
                Err("[SYS/PERM] the maildrop cannot be opened; retrying will not help, ask the administrator");
                return false;
            default:
                Pop3Log.MaildropUnavailable(_context.Logger, null, SessionId, identity.Name, opened.Reason);
                Err("[SYS/TEMP] the maildrop is temporarily unavailable; try again later");
                return false;
        }

        _maildrop = opened.Maildrop!;
        Identity = identity;
        // Cancelling on a pool thread: the revoker (another session's login) does not run this session's continuations.
        _revocation = _maildrop.Revoked.Register(static running => _ = ((CancellationTokenSource)running!).CancelAsync(), _running);
        try
        {
            // RFC 1939 section 4: message numbers are fixed for the session: the maildrop's snapshot does not change
            // (IMaildrop.Messages), so it is read where it is, not copied.
            _messages = _maildrop.Messages;
            _messageCount = _messages.Count;
            _totalOctets = 0;
            for (var i = 0; i < _messageCount; i++)
                _totalOctets += _messages[i].Pop3Size;
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            Pop3Log.MaildropUnavailable(_context.Logger, ex, SessionId, identity.Name, ex.GetType().Name);
            await ReleaseMaildropAsync().ConfigureAwait(false);
            Identity = null;
            Err("[SYS/TEMP] the maildrop is temporarily unavailable; try again later");
            return false;
        }
        _deleted = null;
        Pop3Log.LoggedIn(_context.Logger, SessionId, identity.Name, mechanism, _messageCount);
        Ok($"logged in; maildrop has {_messageCount} messages ({_totalOctets} octets)");
        return true;
    }
}
