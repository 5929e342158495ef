using System.Globalization;

namespace CloudSpool.Core.Accounts;

/// <summary>Parses sizes written by people: <c>500</c>, <c>100K</c>, <c>5M</c>, <c>1G</c> (binary multiples).</summary>
public static class ByteSize
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        if (text.Length == 0)
            return false;
        long multiplier = 1;
        var unit = char.ToUpperInvariant(text[^1]);
        if (unit is 'K' or 'M' or 'G')
        {
            multiplier = unit switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            text = text[..^1];
        }
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value > long.MaxValue / multiplier)
            return false;
        bytes = value * multiplier;
        return true;
    }
}
