using System.Text.Json.Serialization;

namespace CloudSpool.Core.Accounts;

/// <summary>
/// When a stored message is deleted upstream. Deletion only ever happens after the message's bytes
/// and metadata are committed to the spool. Conditions combine with "or".
/// </summary>
public sealed record LeavePolicy
{
    /// <summary>Delete right after the message is safely stored (drain a small-quota mailbox).</summary>
    public bool DeleteWhenStored { get; init; }

    /// <summary>Delete once the message was first stored at least this many days ago.</summary>
    public int? DeleteAfterDays { get; init; }

    /// <summary>Delete once stored when the message is larger than this many bytes.</summary>
    public long? DeleteLargerThan { get; init; }

    /// <summary>Keep everything on the server.</summary>
    public static LeavePolicy Keep { get; } = new();

    /// <summary>True when nothing is ever deleted upstream.</summary>
    [JsonIgnore]
    public bool KeepsEverything => !DeleteWhenStored && DeleteAfterDays is null && DeleteLargerThan is null;

    /// <summary>Whether a message stored at <paramref name="storedAt"/> of <paramref name="size"/> bytes is due for deletion.</summary>
    public bool ShouldDelete(DateTimeOffset storedAt, long size, DateTimeOffset now) =>
        DeleteWhenStored
        || (DeleteAfterDays is { } days && now - storedAt >= TimeSpan.FromDays(days))
        || (DeleteLargerThan is { } limit && size > limit);

    /// <summary>
    /// Parses the command-line form: <c>keep</c>, <c>delete</c>, <c>delete-after=DAYS</c>,
    /// <c>delete-larger=BYTES</c> (K/M/G suffixes allowed), combined with commas.
    /// </summary>
    public static bool TryParse(string text, out LeavePolicy policy, out string? error)
    {
        policy = Keep;
        error = null;
        var result = new LeavePolicy();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var part = raw.ToLowerInvariant();
            if (part == "keep")
                continue;
            if (part == "delete")
            {
                result = result with { DeleteWhenStored = true };
                continue;
            }
            if (part.StartsWith("delete-after=", StringComparison.Ordinal)
                && int.TryParse(part["delete-after=".Length..].TrimEnd('d'), out var days) && days > 0)
            {
                result = result with { DeleteAfterDays = days };
                continue;
            }
            if (part.StartsWith("delete-larger=", StringComparison.Ordinal)
                && ByteSize.TryParse(part["delete-larger=".Length..], out var bytes) && bytes > 0)
            {
                result = result with { DeleteLargerThan = bytes };
                continue;
            }
            error = $"'{raw}' is not a leave policy: expected keep, delete, delete-after=DAYS or delete-larger=SIZE (e.g. 5M), comma-separated";
            return false;
        }
        policy = result;
        return true;
    }

    /// <inheritdoc />
    public override string ToString()
    {
        if (KeepsEverything)
            return "keep";
        var parts = new List<string>();
        if (DeleteWhenStored)
            parts.Add("delete");
        if (DeleteAfterDays is { } d)
            parts.Add($"delete-after={d}");
        if (DeleteLargerThan is { } b)
            parts.Add($"delete-larger={b}");
        return string.Join(',', parts);
    }
}
