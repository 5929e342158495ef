using Azure;
using Azure.Data.Tables;

namespace CloudSpool.Storage.Azure;

/// <summary>The row operations the small stores of the control table share, answering whether the row was there.</summary>
internal static class TableClientExtensions
{
    /// <summary>Adds the row; false, writing nothing, when a row with its keys exists already.</summary>
    public static async Task<bool> TryAddEntityAsync(this TableClient table, TableEntity entity, CancellationToken cancellationToken)
    {
        try
        {
            await table.AddEntityAsync(entity, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (RequestFailedException ex) when (ex.IsConflict())
        {
            return false;
        }
    }

    /// <summary>Deletes the row whatever its version; false when there was none.</summary>
    public static async Task<bool> TryDeleteEntityAsync(this TableClient table, string partitionKey, string rowKey, CancellationToken cancellationToken)
    {
        // The Tables SDK reports a missing entity as a 404 response, not as an exception.
        var response = await table.DeleteEntityAsync(partitionKey, rowKey, ETag.All, cancellationToken).ConfigureAwait(false);
        return response.Status != 404;
    }
}
