using Azure;

namespace CloudSpool.TestSupport.Fixtures;

/// <summary>What storage answers to a call: null when it succeeds, else the HTTP status it refused with.</summary>
public static class StorageCalls
{
    public static async Task<int?> StatusOfAsync(Func<Task> call)
    {
        try
        {
            await call();
            return null;
        }
        catch (RequestFailedException ex)
        {
            return ex.Status;
        }
    }
}
