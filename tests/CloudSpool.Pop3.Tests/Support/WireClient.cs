using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace CloudSpool.Pop3.Tests.Support;

/// <summary>
/// A byte-level POP3 client for transcript tests: sends exactly the bytes given and reads exactly what came back,
/// every read bounded in time.
/// </summary>
public sealed class WireClient(Stream stream) : IAsyncDisposable
{
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private readonly byte[] _buffer = new byte[64 * 1024];
    private Stream _stream = stream;
    private int _pos;
    private int _end;

    public async Task SendAsync(string latin1) => await SendAsync(Encoding.Latin1.GetBytes(latin1));

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes).AsTask().WaitAsync(Patience);
        await _stream.FlushAsync().WaitAsync(Patience);
    }

    /// <summary>The next line without its CRLF (Latin-1), or null at end of stream.</summary>
    public async Task<string?> ReadLineAsync()
    {
        var bytes = await ReadLineBytesAsync();
        if (bytes is null)
            return null;
        Assert.True(bytes.AsSpan().EndsWith("\r\n"u8), "every server line ends in CRLF: " + Wire.Text(bytes));
        return Wire.Text(bytes[..^2]);
    }

    /// <summary>The next line with its line end, or null at end of stream (a partial last line is returned as is).</summary>
    public async Task<byte[]?> ReadLineBytesAsync()
    {
        var line = new List<byte>();
        while (true)
        {
            if (_pos == _end && !await FillAsync())
                return line.Count == 0 ? null : [.. line];
            var b = _buffer[_pos++];
            line.Add(b);
            if (b == '\n')
                return [.. line];
        }
    }

    /// <summary>Reads lines up to the terminating "." line; returns them without CRLF, the terminator left out.</summary>
    public async Task<List<string>> ReadLinesAsync()
    {
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync();
            Assert.NotNull(line);
            if (line == ".")
                return lines;
            lines.Add(line);
        }
    }

    /// <summary>The raw bytes of a multi-line body, terminating line included.</summary>
    public async Task<byte[]> ReadDataAsync()
    {
        var data = new List<byte>();
        while (true)
        {
            var line = await ReadLineBytesAsync();
            Assert.NotNull(line);
            data.AddRange(line);
            if (line.AsSpan().SequenceEqual(".\r\n"u8))
                return [.. data];
        }
    }

    /// <summary>Everything until the server closes the connection.</summary>
    public async Task<byte[]> ReadToEndAsync()
    {
        var data = new List<byte>();
        while (true)
        {
            if (_pos == _end && !await FillAsync())
                return [.. data];
            data.AddRange(_buffer.AsSpan(_pos, _end - _pos).ToArray());
            _pos = _end;
        }
    }

    /// <summary>Asserts the server closed the connection with nothing more to say.</summary>
    public async Task AssertClosedAsync()
    {
        var rest = await ReadToEndAsync();
        Assert.True(rest.Length == 0, "expected the connection to be closed, got: " + Wire.Text(rest));
    }

    /// <summary>Runs the client side of a TLS handshake over the connection, trusting only <paramref name="certificate"/>.</summary>
    public async Task StartTlsAsync(X509Certificate2 certificate)
    {
        Assert.Equal(_pos, _end); // nothing of the plaintext phase may be left unread
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false,
            (_, cert, _, _) => cert is not null && cert.GetCertHashString() == certificate.GetCertHashString());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost" }).WaitAsync(Patience);
        _stream = tls;
    }

    private async Task<bool> FillAsync()
    {
        try
        {
            var n = await _stream.ReadAsync(_buffer).AsTask().WaitAsync(Patience);
            _pos = 0;
            _end = n;
            return n > 0;
        }
        catch (IOException)
        {
            // A reset connection reads as closed.
            return false;
        }
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();
}
