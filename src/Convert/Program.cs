using Converter.Cli;

return new TrellisCli(CliContext.ForConsole()).Invoke(args);
