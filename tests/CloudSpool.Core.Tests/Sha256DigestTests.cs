using System.Security.Cryptography;
using System.Text;
using CloudSpool.Core.Spool;

namespace CloudSpool.Core.Tests;

/// <summary>
/// A SHA-256 held as bytes: it reads back as the lower-case hex it was given in either case, refuses anything else, and
/// an index entry keeps a value that is no SHA-256 as it was given, never proving bytes against it.
/// </summary>
public sealed class Sha256DigestTests
{
    private static readonly byte[] Hash = SHA256.HashData(Encoding.ASCII.GetBytes("a message"));
    private static readonly string Hex = Convert.ToHexStringLower(Hash);

    [Fact]
    public void Hex_in_either_case_and_the_bytes_make_the_same_digest_which_reads_back_as_lower_case_hex()
    {
        Assert.True(Sha256Digest.TryParse(Hex, out var lower));
        Assert.True(Sha256Digest.TryParse(Hex.ToUpperInvariant(), out var upper));
        var fromBytes = Sha256Digest.FromBytes(Hash);

        Assert.Equal(Hex, lower.ToString());
        Assert.Equal(lower, upper);
        Assert.True(lower == fromBytes);
        Assert.Equal(lower.GetHashCode(), fromBytes.GetHashCode());
        var written = new byte[32];
        lower.WriteTo(written);
        Assert.Equal(Hash, written);
    }

    [Theory]
    [InlineData("")]
    [InlineData("00")]
    [InlineData("not a hash")]
    public void Anything_but_64_hex_digits_is_refused(string value)
    {
        Assert.False(Sha256Digest.TryParse(value, out _));
        Assert.False(Sha256Digest.TryParse(Hex[..63] + "g", out _));
        Assert.False(Sha256Digest.TryParse(Hex + "0", out _));
        Assert.Throws<ArgumentException>(() => Sha256Digest.FromBytes(Hash[..31]));
    }

    [Fact]
    public void Digests_of_different_bytes_differ_in_every_word()
    {
        for (var word = 0; word < 4; word++)
        {
            var other = (byte[])Hash.Clone();
            other[word * 8 + 7] ^= 1;
            Assert.NotEqual(Sha256Digest.FromBytes(Hash), Sha256Digest.FromBytes(other));
        }
    }

    [Fact]
    public void An_index_entry_holds_its_sha_as_bytes_and_keeps_one_that_is_no_sha_as_given()
    {
        var entry = new SpoolIndexEntry("m:1", "u", 10, 10, Hex.ToUpperInvariant(), "box/aa/x.eml");
        Assert.True(entry.HasDigest);
        Assert.Equal(Hex, entry.Sha256);
        Assert.Equal(Sha256Digest.FromBytes(Hash), entry.Digest);
        Assert.Equal(entry, new SpoolIndexEntry("m:1", "u", 10, 10, Hex, "box/aa/x.eml"));

        var damaged = entry with { Sha256 = "damaged" };
        Assert.False(damaged.HasDigest);
        Assert.Equal("damaged", damaged.Sha256);
        Assert.NotEqual(entry, damaged);
        Assert.Equal(entry, damaged with { Sha256 = Hex });

        // A row without the column at all: listed, never proven.
        var missing = new SpoolIndexEntry("m:1", "u", 10, 10, null!, "box/aa/x.eml");
        Assert.False(missing.HasDigest);
        Assert.Equal("", missing.Sha256);
    }
}
