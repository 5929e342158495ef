using CloudSpool.Host.Cli;

return await CliApp.InvokeAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
