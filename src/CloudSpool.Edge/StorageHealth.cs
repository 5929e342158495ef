using System.Net.Http;
using System.Net.Sockets;

namespace CloudSpool.Edge;

/// <summary>
/// Storage calls made while a client waits (login, opening a view, fetching a message) are bounded, and once storage
/// has failed to answer they fail at once for a short hold-down: a LAN client gets its answer in moments, served from
/// what the edge holds locally, instead of waiting out the storage client's retries at every step. The background
/// sync keeps probing and lifts the hold-down when storage answers again.
/// </summary>
public sealed class StorageHealth(TimeSpan limit, TimeProvider clock)
{
    /// <summary>How long storage counts as unreachable after it failed to answer.</summary>
    public static readonly TimeSpan HoldDown = TimeSpan.FromSeconds(15);

    private long _downUntil;

    /// <summary>Whether storage failed to answer within the hold-down.</summary>
    public bool IsDown => clock.GetUtcNow().UtcTicks < Interlocked.Read(ref _downUntil);

    /// <summary>Throws when storage is held down, before a call that would wait for it.</summary>
    public void ThrowIfDown()
    {
        if (IsDown)
            throw new TimeoutException($"storage did not answer moments ago (held down for {HoldDown.TotalSeconds:0} s, probed in the background)");
    }

    /// <summary>
    /// Runs <paramref name="call"/> within the time limit, failing at once while storage is held down. Running out
    /// of time throws <see cref="TimeoutException"/>; only the caller's own cancellation is an <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        ThrowIfDown();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit);
        try
        {
            var result = await call(timeout.Token).ConfigureAwait(false);
            Answered();
            return result;
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            Observe(ex);
            throw new TimeoutException($"storage did not answer within {limit.TotalSeconds:0.#} s", ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Observe(ex);
            throw;
        }
    }

    /// <summary>Storage answered: lift the hold-down.</summary>
    public void Answered() => Interlocked.Exchange(ref _downUntil, 0);

    /// <summary>Holds storage down when <paramref name="exception"/> says it could not be reached (not when it said no).</summary>
    public void Observe(Exception exception)
    {
        if (Unreachable(exception))
            Interlocked.Exchange(ref _downUntil, (clock.GetUtcNow() + HoldDown).UtcTicks);
    }

    private static bool Unreachable(Exception? exception) => exception switch
    {
        null => false,
        OperationCanceledException or TimeoutException or HttpRequestException or SocketException => true,
        AggregateException aggregate => aggregate.InnerExceptions.Any(Unreachable),
        _ => Unreachable(exception.InnerException),
    };
}
