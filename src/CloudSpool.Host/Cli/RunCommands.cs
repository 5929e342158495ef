using System.CommandLine;
using CloudSpool.Host.Edge;
using CloudSpool.Host.Scheduling;
using CloudSpool.Host.StatusPage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool run`, `cloudspool worker` and `cloudspool edge`: the long-running hosts.</summary>
public static class RunCommands
{
    public static Command Run(CommandContext context)
    {
        var command = new Command("run", "All-in-one: the scheduler for every job and the POP3 edge (unless Edge:Enabled is false), on the embedded Azurite unless Storage:ConnectionString is set.");
        command.SetAction((parse, ct) => RunHostAsync(context, parse, scheduler: true, edge: EdgeMode.IfEnabled, ct));
        return command;
    }

    public static Command Worker(CommandContext context)
    {
        var command = new Command("worker", "Jobs only (the cloud unit): runs the scheduler without the POP3 edge.");
        command.SetAction((parse, ct) => RunHostAsync(context, parse, scheduler: true, edge: EdgeMode.Off, ct));
        return command;
    }

    public static Command Edge(CommandContext context)
    {
        var command = new Command("edge", "POP3 only (the LAN unit): serves the spool to mail clients with per-client views; exits 1 when it cannot listen.");
        command.SetAction((parse, ct) => RunHostAsync(context, parse, scheduler: false, edge: EdgeMode.Required, ct));
        return command;
    }

    private enum EdgeMode
    {
        Off,
        IfEnabled,
        Required,
    }

    private static Task<int> RunHostAsync(CommandContext context, ParseResult parse, bool scheduler, EdgeMode edge, CancellationToken cancellationToken) =>
        context.WithRuntimeAsync(parse, cancellationToken, async runtime =>
        {
            var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(runtime);
            if (scheduler)
            {
                builder.Services.AddQuartz(q => q.UseInMemoryStore());
                builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
                builder.Services.AddHostedService<ScheduleSync>();
            }
            EdgeService? edgeService = null;
            if (edge == EdgeMode.Required || (edge == EdgeMode.IfEnabled && runtime.Options.Edge.Enabled))
            {
                edgeService = new EdgeService(runtime, required: edge == EdgeMode.Required);
                builder.Services.AddHostedService(_ => edgeService);
            }
            if (runtime.Options.StatusPage.Enabled)
                builder.Services.AddHostedService(_ => new StatusPageService(runtime, edgeService is null ? null : edgeService.Figures));
            builder.Services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(runtime.Loggers));
            using var host = builder.Build();
            var logger = runtime.Loggers.CreateLogger("CloudSpool");
            if (scheduler)
                HostLog.Running(logger, runtime.StorageDescription, runtime.Options.Scheduler.RefreshInterval.TotalSeconds);
            else
                HostLog.EdgeRunning(logger, runtime.StorageDescription);
            try
            {
                await host.RunAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (edge == EdgeMode.Required && ex is System.Net.Sockets.SocketException or System.Security.Cryptography.CryptographicException or IOException or ArgumentException or InvalidOperationException)
            {
                HostLog.EdgeCouldNotStart(logger, ex, ex.Message);
                return ExitCodes.Failed;
            }
            HostLog.Stopped(logger);
            return ExitCodes.Ok;
        });
}
