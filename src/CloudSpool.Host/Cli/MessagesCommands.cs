using System.CommandLine;
using System.Text.Json;

namespace CloudSpool.Host.Cli;

/// <summary>`cloudspool messages list|show|export`.</summary>
public static class MessagesCommands
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static Command Create(CommandContext context)
    {
        var messages = new Command("messages", "Look at the spool.");
        var mailbox = new Option<string>("--mailbox") { Description = "Local mailbox", Required = true, Recursive = true };
        messages.Options.Add(mailbox);

        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var list = new Command("list", "List a mailbox's messages in arrival order.") { json };
        list.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var items = new List<Core.Spool.SpoolMessage>();
            await foreach (var m in runtime.SpoolReader.ListAsync(parse.GetValue(mailbox)!, null, ct).ConfigureAwait(false))
                items.Add(m);
            if (parse.GetValue(json))
            {
                await context.Out.WriteLineAsync(JsonSerializer.Serialize(items, Json)).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            foreach (var m in items)
            {
                var flag = m.Summary.Malformed ? " [malformed]" : "";
                await context.PrintAsync($"{m.MessageKey}  {m.Pop3Size,9}  {m.SourceAccount,-12} {m.Summary.From} | {m.Summary.Subject}{flag}").ConfigureAwait(false);
            }
            await context.PrintAsync($"{items.Count} messages").ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        messages.Subcommands.Add(list);

        var key = new Argument<string>("key") { Description = "Message key (from messages list)" };
        var show = new Command("show", "Show one message's metadata.") { key };
        show.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var m = await runtime.SpoolReader.GetAsync(parse.GetValue(mailbox)!, parse.GetValue(key)!, ct).ConfigureAwait(false);
            if (m is null)
            {
                await context.PrintErrorAsync("no such message").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            // The message's metadata plus, per destination, whether it was forwarded and why (or why not).
            var view = JsonSerializer.SerializeToNode(m, Json)!.AsObject();
            view["forwarding"] = JsonSerializer.SerializeToNode(await runtime.Forward.ExplainAsync(m, ct).ConfigureAwait(false), Json);
            await context.Out.WriteLineAsync(view.ToJsonString(Json)).ConfigureAwait(false);
            return ExitCodes.Ok;
        }));
        messages.Subcommands.Add(show);

        var exportKey = new Argument<string>("key") { Description = "Message key (from messages list)" };
        var output = new Option<string?>("--output") { Description = "File to write (default: standard output)" };
        var export = new Command("export", "Write a message's raw bytes, exactly as stored.") { exportKey, output };
        export.SetAction((parse, ct) => context.WithRuntimeAsync(parse, ct, async runtime =>
        {
            var m = await runtime.SpoolReader.GetAsync(parse.GetValue(mailbox)!, parse.GetValue(exportKey)!, ct).ConfigureAwait(false);
            if (m is null)
            {
                await context.PrintErrorAsync("no such message").ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            var raw = await runtime.SpoolReader.OpenRawAsync(m, ct).ConfigureAwait(false);
            await using (raw.ConfigureAwait(false))
            {
                var path = parse.GetValue(output);
                var target = path is null ? Console.OpenStandardOutput() : File.Create(path);
                await using (target.ConfigureAwait(false))
                    await raw.CopyToAsync(target, ct).ConfigureAwait(false);
            }
            return ExitCodes.Ok;
        }));
        messages.Subcommands.Add(export);
        return messages;
    }
}
