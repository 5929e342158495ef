using Azure;

namespace CloudSpool.Storage.Azure;

/// <summary>Predicates on storage errors, so callers say what they mean.</summary>
public static class RequestFailedExceptionExtensions
{
    public static bool IsConflict(this RequestFailedException ex) => ex.Status == 409;
    public static bool IsNotFound(this RequestFailedException ex) => ex.Status == 404;
    public static bool IsPreconditionFailed(this RequestFailedException ex) => ex.Status == 412;
}
