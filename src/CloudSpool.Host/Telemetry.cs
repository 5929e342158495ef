using CloudSpool.Core.Telemetry;
using CloudSpool.Host.Configuration;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace CloudSpool.Host;

/// <summary>
/// Exports <see cref="CloudSpoolMetrics"/> and the runtime's own meter (GC, memory, CPU: "System.Runtime") through
/// OpenTelemetry's OTLP/HTTP exporter when Telemetry:OtlpEndpoint is set.
/// </summary>
internal static class Telemetry
{
    /// <summary>The meter provider, or null when no endpoint is configured. Disposing it exports once more.</summary>
    public static MeterProvider? StartMetrics(TelemetryOptions options, ILogger logger)
    {
        if (string.IsNullOrWhiteSpace(options.OtlpEndpoint))
            return null;
        var endpoint = new Uri(options.OtlpEndpoint.TrimEnd('/') + "/v1/metrics");
        var provider = Sdk.CreateMeterProviderBuilder()
            .ConfigureResource(r => r.AddService("cloudspool", serviceVersion: typeof(Telemetry).Assembly.GetName().Version?.ToString()))
            .AddMeter(CloudSpoolMetrics.MeterName, "System.Runtime")
            .AddOtlpExporter((exporter, reader) =>
            {
                exporter.Endpoint = endpoint;
                exporter.Protocol = OtlpExportProtocol.HttpProtobuf;
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)options.ExportInterval.TotalMilliseconds;
            })
            .Build();
        HostLog.ExportingMetrics(logger, endpoint, options.ExportInterval.TotalSeconds);
        return provider;
    }
}
