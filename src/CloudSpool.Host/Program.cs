using CloudSpool.Host.Cli;

return await CliApp.InvokeAsync(args, Console.In, Console.Out, Console.Error).ConfigureAwait(false);
