using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CloudSpool.Core.Spool;
using CloudSpool.Host;
using CloudSpool.Host.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudSpool.TestSupport.Soak;

/// <summary>The drain (waiting, with a deadline, until everything has settled) and the end checks.</summary>
public sealed partial class SoakRunner
{
    private Runtime? _checker;
    private bool _keepWork;

    /// <summary>
    /// Health alerts found in the spool. With Health:FailingAfter at its default (one hour) no fault of the soak lasts
    /// long enough to deserve one, so each is printed and the evidence kept (the workers' logs say why it was raised).
    /// </summary>
    private readonly List<string> _alerts = [];

    private async Task<Runtime> CheckerAsync(CancellationToken ct)
    {
        if (_checker is null)
        {
            var options = new CloudSpoolOptions
            {
                Storage = new StorageOptions { ConnectionString = _azurite!.ConnectionString, NamePrefix = _prefix },
                Pull = new PullOptions { TempDirectory = Path.Combine(_work, "pull") },
                Edge = new EdgeOptions { StateDirectory = Path.Combine(_work, "checker-edge") },
            };
            _checker = await Runtime.StartAsync(options, NullLoggerFactory.Instance, ct).ConfigureAwait(false);
        }
        return _checker;
    }

    /// <summary>Waits until every condition holds or the drain timeout passes; logs what is still pending meanwhile.</summary>
    private async Task<bool> DrainAsync(CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + _options.DrainTimeout;
        var lastLog = DateTime.MinValue;
        while (true)
        {
            List<string> pending;
            try
            {
                pending = await PendingAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is Azure.RequestFailedException or IOException or InvalidOperationException or System.Net.Http.HttpRequestException)
            {
                pending = ["checker: " + ex.Message];
            }
            if (pending.Count == 0)
                return true;
            if (DateTime.UtcNow > deadline)
            {
                Log("still pending at the drain deadline: " + string.Join("; ", pending));
                return false;
            }
            if (DateTime.UtcNow - lastLog > TimeSpan.FromSeconds(10))
            {
                Log("pending: " + string.Join("; ", pending));
                lastLog = DateTime.UtcNow;
            }
            await Task.Delay(TimeSpan.FromSeconds(2), ct).ConfigureAwait(false);
        }
    }

    private async Task<List<string>> PendingAsync(CancellationToken ct)
    {
        var runtime = await CheckerAsync(ct).ConfigureAwait(false);
        var pending = new List<string>();
        var index = new Dictionary<string, List<SpoolMessage>>(StringComparer.Ordinal);
        foreach (var mailbox in new[] { ForwardMailbox, KeepMailbox })
        {
            var entries = new List<SpoolMessage>();
            await foreach (var e in runtime.SpoolReader.ListAsync(mailbox, null, ct).ConfigureAwait(false))
                entries.Add(e);
            index[mailbox] = entries;
        }
        var stored = index.Values.SelectMany(e => e).Select(e => e.Sha256).ToHashSet(StringComparer.Ordinal);
        var notStored = _delivered.Values.Count(m => !stored.Contains(m.ExpectedSha256));
        if (notStored > 0)
            pending.Add($"{notStored} messages not in the spool yet");
        if (_dovecot!.ListMessageFiles(DrainUser).Count is > 0 and var left)
            pending.Add($"{left} messages still upstream in the leave=delete account");
        var forwarded = ForwardedIds(out var others);
        var notForwarded = _delivered.Values.Count(m => m.ForwardEligible && !forwarded.ContainsKey(m.Id));
        if (notForwarded > 0)
            pending.Add($"{notForwarded} messages not forwarded yet");
        var alertsNotForwarded = AlertSubjects(index[ForwardMailbox]).Count(a => !others.Contains(a));
        if (alertsNotForwarded > 0)
            pending.Add($"{alertsNotForwarded} health alerts not forwarded yet");
        foreach (var client in _clients)
        {
            var received = client.Received;
            var missing = index[client.Mailbox].Count(e => !received.ContainsKey(e.Uidl));
            if (missing > 0)
                pending.Add($"{client.Login} lacks {missing}");
        }
        if (pending.Count == 0)
        {
            var notOk = (await StatusAsync().ConfigureAwait(false)).Where(s => s.State != "ok").ToList();
            if (notOk.Count > 0)
                pending.Add("status: " + string.Join(", ", notOk.Select(s => $"{s.Account} {s.State}")));
        }
        return pending;
    }

    private sealed record AccountState(string Account, string State, int FailureStreak, string? LastError);

    private async Task<List<AccountState>> StatusAsync()
    {
        var (code, stdout, stderr) = await Fixtures.CliProcess.RunAsync(_env, "status", "--json").ConfigureAwait(false);
        if (code != 0)
            return [new AccountState("(status)", $"exit {code}: {stderr}", 0, null)];
        return JsonSerializer.Deserialize<List<AccountState>>(stdout, new JsonSerializerOptions(JsonSerializerDefaults.Web)) ?? [];
    }

    /// <summary>Soak id to the number of copies the SMTP server stored (matched by the subject, which trimming keeps), and the copies without one.</summary>
    private Dictionary<string, int> ForwardedIds() => ForwardedIds(out _);

    private Dictionary<string, int> ForwardedIds(out List<string> others)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        others = [];
        foreach (var (message, _) in _smtp!.Received())
        {
            var match = SubjectId().Match(message.Subject ?? "");
            if (match.Success)
                result[match.Groups[1].Value] = result.GetValueOrDefault(match.Groups[1].Value) + 1;
            else
                others.Add(message.Subject ?? "(no subject)");
        }
        return result;
    }

    /// <summary>
    /// Subjects of CloudSpool's own health alerts in a mailbox: in the forwarded mailbox each must reach the phone once
    /// (the forward rules always send them while away).
    /// </summary>
    private static List<string> AlertSubjects(IEnumerable<SpoolMessage> messages) =>
        [.. messages.Where(m => m.SourceAccount == CloudSpool.Core.Health.HealthRunner.AlertSource).Select(m => m.Summary.Subject ?? "")];

    [GeneratedRegex(@"^soak (S\d+) ")]
    private static partial Regex SubjectId();

    /// <summary>After the drain: sessions until two in a row succeed (a deleting client's second one must list nothing).</summary>
    private async Task FinalClientSessionsAsync(CancellationToken ct)
    {
        foreach (var client in _clients)
        {
            var successes = 0;
            for (var attempt = 0; attempt < 15 && successes < 2; attempt++)
            {
                successes = await client.SessionAsync(ct).ConfigureAwait(false) ? successes + 1 : 0;
                await Task.Delay(TimeSpan.FromMilliseconds(successes == 0 ? 2000 : 300), ct).ConfigureAwait(false);
            }
        }
    }

    private async Task CheckAsync(SoakReport report, CancellationToken ct)
    {
        var runtime = await CheckerAsync(ct).ConfigureAwait(false);
        var figures = report.Figures;
        var fail = report.Failures;

        // 1. Every message delivered upstream is in the spool exactly once, with the right bytes.
        var spool = new Dictionary<string, List<SpoolMessage>>(StringComparer.Ordinal);
        var copies = new Dictionary<string, List<(string Mailbox, string Sha, bool SelfConsistent)>>(StringComparer.Ordinal);
        var alerts = 0;
        foreach (var mailbox in new[] { ForwardMailbox, KeepMailbox })
        {
            var messages = new List<SpoolMessage>();
            await foreach (var m in runtime.SpoolReader.ListAsync(mailbox, null, ct).ConfigureAwait(false))
                messages.Add(m);
            spool[mailbox] = messages;
            foreach (var m in messages)
            {
                byte[] bytes;
                await using (var stream = await runtime.SpoolReader.OpenRawAsync(m, ct).ConfigureAwait(false))
                {
                    using var buffer = new MemoryStream();
                    await stream.CopyToAsync(buffer, ct).ConfigureAwait(false);
                    bytes = buffer.ToArray();
                }
                var sha = SoakMail.Hex(bytes);
                if (sha != m.Sha256)
                    fail.Add($"spool {mailbox}/{m.MessageKey}: blob SHA-256 {sha} differs from the {m.Sha256} recorded at ingest");
                var (id, selfConsistent) = SoakMail.Inspect(bytes);
                if (id is null)
                {
                    if (Encoding.Latin1.GetString(bytes, 0, Math.Min(bytes.Length, 8192)).Contains("X-CloudSpool-Alert:", StringComparison.OrdinalIgnoreCase))
                    {
                        alerts++;
                        _alerts.Add($"{mailbox}: {m.Summary.Subject}");
                    }
                    else
                        fail.Add($"spool {mailbox}/{m.MessageKey}: a message the soak never delivered (subject {m.Summary.Subject})");
                    continue;
                }
                if (!copies.TryGetValue(id, out var list))
                    copies[id] = list = [];
                list.Add((mailbox, sha, selfConsistent));
            }
        }
        int missing = 0, duplicated = 0, wrongBytes = 0;
        foreach (var message in _delivered.Values.OrderBy(m => m.Id, StringComparer.Ordinal))
        {
            var found = copies.GetValueOrDefault(message.Id) ?? [];
            if (found.Count == 0)
            {
                missing++;
                fail.Add($"{message.Id} ({message.Kind}, {message.Raw.Length} bytes, for {message.Mailbox}) is not in the spool");
                continue;
            }
            if (found.Count > 1)
            {
                duplicated++;
                fail.Add($"{message.Id} is in the spool {found.Count} times");
            }
            foreach (var copy in found)
            {
                if (copy.Mailbox != message.Mailbox)
                    fail.Add($"{message.Id} is in mailbox {copy.Mailbox}, not {message.Mailbox}");
                if (copy.Sha != message.ExpectedSha256 || !copy.SelfConsistent)
                {
                    wrongBytes++;
                    fail.Add($"{message.Id} ({message.Kind}): stored bytes differ from what was delivered (self-consistent: {copy.SelfConsistent})");
                }
            }
        }
        var byKind = string.Join(", ", _delivered.Values.GroupBy(m => m.Kind).OrderBy(g => g.Key).Select(g => $"{g.Count()} {g.Key.ToString().ToLowerInvariant()}"));
        figures.AddRange(_alerts.Select(a => "health alert in the spool: " + a));
        figures.Add($"upstream: {_delivered.Count} messages delivered ({byKind}), {Mib(_delivered.Values.Sum(m => (long)m.Raw.Length))} MiB");
        figures.Add($"spool: {spool.Values.Sum(l => l.Count)} messages ({spool[ForwardMailbox].Count} {ForwardMailbox}, {spool[KeepMailbox].Count} {KeepMailbox}); " +
                    $"missing {missing}, stored twice {duplicated}, wrong bytes {wrongBytes}, health alerts {alerts}");

        // The leave=delete account was emptied upstream; the keep account still holds everything.
        var drainLeft = _dovecot!.ListMessageFiles(DrainUser).Count;
        var keepLeft = _dovecot.ListMessageFiles(KeepUser).Count;
        var keepDelivered = _delivered.Values.Count(m => m.Mailbox == KeepMailbox);
        figures.Add($"upstream after the run: {drainLeft} left in the leave=delete account, {keepLeft} of {keepDelivered} kept in the IMAP account");
        if (drainLeft != 0)
            fail.Add($"{drainLeft} messages were never deleted upstream from the leave=delete account");
        if (keepLeft != keepDelivered)
            fail.Add($"the keep account holds {keepLeft} messages upstream, {keepDelivered} were delivered");

        // 2. Every forward-eligible message reached the phone exactly once; nothing else did.
        var forwarded = ForwardedIds(out var unknown);
        var eligible = _delivered.Values.Where(m => m.ForwardEligible).ToList();
        var notSent = eligible.Where(m => !forwarded.ContainsKey(m.Id)).ToList();
        var sentTwice = forwarded.Where(f => f.Value > 1).ToList();
        var notEligible = forwarded.Keys.Where(id => !_delivered.TryGetValue(id, out var m) || !m.ForwardEligible).ToList();
        figures.Add($"forward: {eligible.Count} eligible, {forwarded.Values.Sum()} copies received by the SMTP server; " +
                    $"missing {notSent.Count}, twice {sentTwice.Count}, not eligible {notEligible.Count + unknown.Count}");
        fail.AddRange(notSent.Select(m => $"{m.Id} ({m.Kind}) was never forwarded"));
        fail.AddRange(sentTwice.Select(f => $"{f.Key} was forwarded {f.Value} times"));
        fail.AddRange(notEligible.Select(id => $"{id} was forwarded but is not eligible ({(_delivered.TryGetValue(id, out var m) ? m.Kind.ToString() : "unknown")})"));
        var alertSubjects = AlertSubjects(spool[ForwardMailbox]);
        foreach (var alert in alertSubjects)
        {
            if (!unknown.Remove(alert))
                fail.Add($"the health alert '{alert}' in the forwarded mailbox never reached the phone");
        }
        figures.Add($"forward: {alertSubjects.Count} health alerts in the forwarded mailbox, {alertSubjects.Count - fail.Count(f => f.StartsWith("the health alert", StringComparison.Ordinal))} reached the phone");
        fail.AddRange(unknown.Select(s => $"a copy the soak never sent (or a health alert twice) reached the phone: {s}"));

        // 3. Every POP3 client received every message of its view once, with the stored bytes; deletes hid only its own view.
        foreach (var client in _clients)
        {
            var view = spool[client.Mailbox].ToDictionary(m => m.Uidl, m => m.Sha256, StringComparer.Ordinal);
            var received = client.Received;
            var lacks = view.Keys.Count(u => !received.ContainsKey(u));
            var extra = received.Keys.Count(u => !view.ContainsKey(u));
            var wrong = received.Count(r => view.TryGetValue(r.Key, out var sha) && sha != r.Value);
            var expectedListed = client.Deletes ? 0 : view.Count;
            figures.Add($"client {client.Login} ({(client.Deletes ? "deletes" : "keeps")}): {client.Sessions} sessions ({client.FailedSessions} failed), " +
                        $"{received.Count} of {view.Count} received, missing {lacks}, unknown {extra}, wrong bytes {wrong}, listed at the end {client.LastListed}");
            if (lacks > 0)
                fail.Add($"{client.Login} never received {lacks} messages of its view (last error: {client.LastError})");
            if (extra > 0)
                fail.Add($"{client.Login} received {extra} messages that are not in the spool");
            if (wrong > 0)
                fail.Add($"{client.Login} received {wrong} messages with bytes other than stored");
            if (client.LastListed != expectedListed)
                fail.Add($"{client.Login} listed {client.LastListed} messages at the end, expected {expectedListed} (last error: {client.LastError})");
            fail.AddRange(client.Violations);
        }
        if (_hostile is not null)
            figures.Add($"hostile clients: {_hostile.Attacks} attacks, {_hostile.CutOff} cut off by the edge");

        // 4. No account was left silently failing.
        var status = await StatusAsync().ConfigureAwait(false);
        figures.Add("status: " + string.Join(", ", status.Select(s => $"{s.Account} {s.State}")));
        fail.AddRange(status.Where(s => s.State != "ok").Select(s => $"account {s.Account} is {s.State} after the drain ({s.FailureStreak} failures: {s.LastError})"));

        // 5. No process died that the soak did not kill.
        List<Fixtures.CliProcess> workers;
        lock (_workers)
            workers = [.. _workers];
        foreach (var worker in workers.Where(w => w.HasExited && !_stoppedOnPurpose.Contains(w)))
            fail.Add($"a worker (pid {worker.Id}) exited by itself: {Tail(worker.Stderr)}");
        if (_edge!.HasExited)
            fail.Add("the edge exited: " + Tail(_edge.Stderr));
        figures.Add($"processes: {workers.Count} worker starts, edge {(_edge.HasExited ? "DEAD" : "alive")}");
    }

    private void CheckMemory(SoakReport report)
    {
        var max = _memory.MaxKb;
        report.Figures.Add("max RSS MiB: " + string.Join(", ", max.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => $"{m.Key} {m.Value / 1024}")));
        foreach (var (name, kb) in max)
        {
            if (kb * 1024 > _options.MemoryBoundBytes)
                report.Failures.Add($"{name} reached {kb / 1024} MiB resident, over the bound of {_options.MemoryBoundBytes >> 20} MiB");
        }
        foreach (var name in new[] { "worker", "edge", "azurite", "dovecot", "aiosmtpd" }.Where(n => !max.ContainsKey(n)))
            report.Failures.Add($"no memory sample of {name}: the sampler did not find it");
    }

    /// <summary>After a failed check: the processes' logs and the SMTP server's mail kept in the work folder, for the report.</summary>
    private void KeepEvidence(SoakReport report)
    {
        _keepWork = true;
        var logs = Directory.CreateDirectory(Path.Combine(_work, "logs")).FullName;
        List<Fixtures.CliProcess> workers;
        lock (_workers)
            workers = [.. _workers];
        for (var i = 0; i < workers.Count; i++)
            File.WriteAllText(Path.Combine(logs, $"worker-{i + 1}-pid{workers[i].Id}.log"), workers[i].Stderr + workers[i].Stdout);
        File.WriteAllText(Path.Combine(logs, "edge.log"), _edge!.Stderr + _edge.Stdout);
        File.WriteAllText(Path.Combine(logs, "dovecot.log"), _dovecot!.ReadLog());
        CopyTree(_smtp!.Maildir, Path.Combine(logs, "smtp-maildir"));
        File.WriteAllLines(Path.Combine(logs, "faults.log"), _faultLog);
        report.Figures.Add("evidence kept in " + _work + " (logs/, azurite/)");
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);

    private static string Tail(string text) => text.Length <= 2000 ? text : text[^2000..];

    public async ValueTask DisposeAsync()
    {
        await _stopClients.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_clientTasks).ConfigureAwait(false);
        _stopClients.Dispose();
        if (_checker is not null)
            await _checker.DisposeAsync().ConfigureAwait(false);
        lock (_workers)
        {
            foreach (var worker in _workers)
                worker.Dispose();
        }
        _edge?.Dispose();
        if (_clientProxy is not null)
            await _clientProxy.DisposeAsync().ConfigureAwait(false);
        if (_upstreamProxy is not null)
            await _upstreamProxy.DisposeAsync().ConfigureAwait(false);
        if (_smtp is not null)
            await _smtp.DisposeAsync().ConfigureAwait(false);
        if (_dovecot is not null)
            await _dovecot.DisposeAsync().ConfigureAwait(false);
        if (_azurite is not null)
            await _azurite.DisposeAsync().ConfigureAwait(false);
        if (_keepWork)
            return;
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover temp folder is harmless.
        }
    }
}
