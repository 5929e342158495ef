using System.Net;
using System.Net.Sockets;
using CloudSpool.Host.Azurite;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.Host.Tests;

/// <summary>With no connection string configured, every command runs on the embedded Azurite it starts and stops itself.</summary>
public sealed class EmbeddedAzuriteTests : IDisposable
{
    private readonly string _location = Directory.CreateTempSubdirectory("cloudspool-embedded-").FullName;

    private Dictionary<string, string> Environment(int blob, int queue, int table) => new()
    {
        ["CLOUDSPOOL_CONFIG"] = "",
        ["CLOUDSPOOL__Storage__Azurite__Location"] = _location,
        ["CLOUDSPOOL__Storage__Azurite__BlobPort"] = blob.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CLOUDSPOOL__Storage__Azurite__QueuePort"] = queue.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CLOUDSPOOL__Storage__Azurite__TablePort"] = table.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["CLOUDSPOOL_SECRET_EMBEDDED_PW"] = "pw",
        ["CLOUDSPOOL__Edge__Port"] = "0",
        ["CLOUDSPOOL__StatusPage__Port"] = "0",
        ["CLOUDSPOOL__Edge__StateDirectory"] = Path.Combine(_location, "edge-state"),
    };

    private static bool Listening(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Commands_start_azurite_keep_their_data_and_stop_it_again()
    {
        var (blob, queue, table) = (EmbeddedAzurite.FreePort(), EmbeddedAzurite.FreePort(), EmbeddedAzurite.FreePort());
        var env = Environment(blob, queue, table);

        var add = await CliProcess.RunAsync(env, "account", "add", "home", "--host", "127.0.0.1", "--user", "me", "--password-ref", "env:CLOUDSPOOL_SECRET_EMBEDDED_PW", "--mailbox", "me");
        Assert.True(add.ExitCode == 0, add.Stdout + add.Stderr);
        Assert.Contains("started Azurite", add.Stderr);
        Assert.False(Listening(blob), "the command stopped the Azurite it started");
        Assert.False(Listening(table));

        // A second command finds the data the first one wrote (the table store was flushed on SIGTERM).
        var list = await CliProcess.RunAsync(env, "account", "list");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("home", list.Stdout);
        Assert.True(Directory.EnumerateFileSystemEntries(_location).Any());
    }

    [Fact]
    public async Task A_running_host_shares_its_azurite_with_one_shot_commands()
    {
        var (blob, queue, table) = (EmbeddedAzurite.FreePort(), EmbeddedAzurite.FreePort(), EmbeddedAzurite.FreePort());
        var env = Environment(blob, queue, table);
        using var host = CliProcess.Start(env, "run");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!host.Stderr.Contains("CloudSpool running", StringComparison.Ordinal) && DateTime.UtcNow < deadline && !host.HasExited)
            await Task.Delay(200);
        Assert.True(Listening(blob), host.Stderr);

        var add = await CliProcess.RunAsync(env, "account", "add", "shared", "--host", "127.0.0.1", "--user", "me", "--password-ref", "env:CLOUDSPOOL_SECRET_EMBEDDED_PW", "--mailbox", "me");
        Assert.True(add.ExitCode == 0, add.Stderr);
        Assert.Contains("using the Azurite already listening", add.Stderr);
        Assert.True(Listening(blob), "a one-shot command must not stop the host's Azurite");

        await host.TerminateAsync();
        Assert.Equal(0, await host.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(Listening(blob), "the host stops the Azurite it started");
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_location, recursive: true);
        }
        catch (IOException)
        {
            // Best effort.
        }
    }
}
