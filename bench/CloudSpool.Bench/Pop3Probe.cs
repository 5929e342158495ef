using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace CloudSpool.Bench;

/// <summary>
/// A minimal POP3 session (USER/PASS, STAT, LIST, UIDL, QUIT) that makes Dovecot index the freshly delivered
/// maildir (move new/ to cur/, count sizes, assign UIDs) before anything is measured, so neither tool pays for it.
/// </summary>
public static class Pop3Probe
{
    public static async Task<(int Messages, long Octets)> WarmUpAsync(string host, int port, string user, string password, CancellationToken ct)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(host, port, ct).ConfigureAwait(false);
        using var stream = client.GetStream();
        using var reader = new StreamReader(stream, Encoding.Latin1);
        using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };

        async Task<string> CommandAsync(string? command)
        {
            if (command is not null)
            {
                await writer.WriteLineAsync(command).ConfigureAwait(false);
            }

            var line = await reader.ReadLineAsync(ct).ConfigureAwait(false) ?? throw new IOException("POP3 server closed the connection");
            if (!line.StartsWith("+OK", StringComparison.Ordinal))
            {
                throw new IOException($"POP3 {command?.Split(' ')[0] ?? "greeting"}: {line}");
            }

            return line;
        }

        async Task<int> MultiLineAsync(string command)
        {
            await CommandAsync(command).ConfigureAwait(false);
            var lines = 0;
            while ((await reader.ReadLineAsync(ct).ConfigureAwait(false) ?? throw new IOException("POP3 server closed the connection")) != ".")
            {
                lines++;
            }

            return lines;
        }

        await CommandAsync(null).ConfigureAwait(false);
        await CommandAsync($"USER {user}").ConfigureAwait(false);
        await CommandAsync($"PASS {password}").ConfigureAwait(false);
        var stat = (await CommandAsync("STAT").ConfigureAwait(false)).Split(' ');
        await MultiLineAsync("LIST").ConfigureAwait(false);
        await MultiLineAsync("UIDL").ConfigureAwait(false);
        await CommandAsync("QUIT").ConfigureAwait(false);
        return (int.Parse(stat[1], CultureInfo.InvariantCulture), long.Parse(stat[2], CultureInfo.InvariantCulture));
    }
}
