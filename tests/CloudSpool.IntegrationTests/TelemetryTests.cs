using System.Net;
using System.Net.Sockets;
using System.Text;
using CloudSpool.TestSupport.Fixtures;

namespace CloudSpool.IntegrationTests;

/// <summary>Metrics through OpenTelemetry: a real `cloudspool job run pull` exports over OTLP/HTTP to a receiver on loopback.</summary>
public sealed class TelemetryTests : DovecotAndSpoolTest
{
    [Fact]
    public async Task A_pull_run_exports_its_runs_messages_and_bytes_over_otlp_http()
    {
        await using var receiver = OtlpReceiver.Start();
        Dovecot.AddUser("metered", "pw");
        Dovecot.DeliverRaw("metered", TestMail.Create("counted", bodyBytes: 4000));
        Dovecot.DeliverRaw("metered", TestMail.Create("counted too", bodyBytes: 9000));
        var env = Spool.CliEnvironment(("CLOUDSPOOL_SECRET_OTEL_PW", "pw"), ("CLOUDSPOOL__Telemetry__OtlpEndpoint", receiver.BaseUrl));
        var add = await CliProcess.RunAsync(env, "account", "add", "metered", "--host", Dovecot.Host, "--port",
            Dovecot.Pop3Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--tls", "none", "--user", "metered",
            "--password-ref", "env:CLOUDSPOOL_SECRET_OTEL_PW", "--mailbox", "metered");
        Assert.True(add.ExitCode == 0, add.Stderr);

        var pull = await CliProcess.RunAsync(env, "job", "run", "pull", "--account", "metered");
        Assert.True(pull.ExitCode == 0, pull.Stderr);
        Assert.Contains("exporting metrics over OTLP/HTTP to " + receiver.BaseUrl + "/v1/metrics", pull.Stderr);

        // The one-shot command exported when it ended: OTLP protobuf carries names and attribute values as plain UTF-8.
        var requests = receiver.Requests;
        Assert.NotEmpty(requests);
        Assert.All(requests, r => Assert.Equal(("POST", "/v1/metrics", "application/x-protobuf"), (r.Method, r.Path, r.ContentType)));
        var body = Encoding.UTF8.GetString(requests.SelectMany(r => r.Body).ToArray());
        foreach (var expected in new[] { "cloudspool.pull.runs", "cloudspool.pull.messages", "cloudspool.pull.bytes", "cloudspool.pull.duration", "metered", "succeeded", "service.name", "cloudspool" })
            Assert.Contains(expected, body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_an_endpoint_nothing_is_exported_and_a_bad_one_is_refused_with_its_path()
    {
        var quiet = await CliProcess.RunAsync(Spool.CliEnvironment(), "job", "run", "health");
        Assert.True(quiet.ExitCode == 0, quiet.Stderr);
        Assert.DoesNotContain("exporting metrics", quiet.Stderr);

        var bad = await CliProcess.RunAsync(Spool.CliEnvironment(("CLOUDSPOOL__Telemetry__OtlpEndpoint", "collector:4318")), "job", "run", "health");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("Telemetry:OtlpEndpoint", bad.Stderr);
    }

    /// <summary>A minimal OTLP/HTTP receiver: answers 200 to every request and keeps what it received.</summary>
    private sealed class OtlpReceiver : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly List<(string Method, string Path, string? ContentType, byte[] Body)> _requests = [];
        private readonly Task _loop;

        private OtlpReceiver(int port)
        {
            BaseUrl = $"http://127.0.0.1:{port}";
            _listener.Prefixes.Add(BaseUrl + "/");
            _listener.Start();
            _loop = Task.Run(LoopAsync);
        }

        public string BaseUrl { get; }

        public IReadOnlyList<(string Method, string Path, string? ContentType, byte[] Body)> Requests
        {
            get
            {
                lock (_requests)
                    return [.. _requests];
            }
        }

        public static OtlpReceiver Start()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            return new OtlpReceiver(port);
        }

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }
                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                lock (_requests)
                    _requests.Add((context.Request.HttpMethod, context.Request.Url!.AbsolutePath, context.Request.ContentType, body.ToArray()));
                context.Response.StatusCode = 200;
                context.Response.ContentType = "application/x-protobuf";
                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            await _loop;
        }
    }
}
