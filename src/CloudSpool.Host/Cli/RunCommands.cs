using System.CommandLine;
using CloudSpool.Host.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Quartz;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool run` and `cloudspool worker`: the long-running scheduler.</summary>
public static class RunCommands
{
    public static Command Run(CommandContext context)
    {
        var command = new Command("run", "All-in-one: the scheduler for every job, on the embedded Azurite unless Storage:ConnectionString is set. (The POP3 edge and status page join it as they land.)");
        command.SetAction((parse, ct) => RunHostAsync(context, parse, ct));
        return command;
    }

    public static Command Worker(CommandContext context)
    {
        var command = new Command("worker", "Jobs only (the cloud unit): runs the scheduler without the POP3 edge.");
        command.SetAction((parse, ct) => RunHostAsync(context, parse, ct));
        return command;
    }

    private static Task<int> RunHostAsync(CommandContext context, ParseResult parse, CancellationToken cancellationToken) =>
        context.WithRuntimeAsync(parse, cancellationToken, async runtime =>
        {
            var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
            builder.Logging.ClearProviders();
            builder.Services.AddSingleton(runtime);
            builder.Services.AddQuartz(q => q.UseInMemoryStore());
            builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
            builder.Services.AddHostedService<ScheduleSync>();
            builder.Services.Replace(ServiceDescriptor.Singleton<ILoggerFactory>(runtime.Loggers));
            using var host = builder.Build();
            var logger = runtime.Loggers.CreateLogger("CloudSpool");
            logger.LogInformation("CloudSpool running on {Storage}; schedules refresh every {Seconds}s; Ctrl+C stops", runtime.StorageDescription, runtime.Options.Scheduler.RefreshSeconds);
            await host.RunAsync(cancellationToken).ConfigureAwait(false);
            logger.LogInformation("CloudSpool stopped");
            return ExitCodes.Ok;
        });
}
