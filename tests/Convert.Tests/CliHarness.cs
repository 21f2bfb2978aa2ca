using Converter.Cli;

namespace Converter.Convert.Tests;

/// <summary>The real CLI with its output and log captured, for command-line table tests.</summary>
internal static class CliHarness
{
    public static (TrellisCli Cli, StringWriter Out, StringWriter Err) NewCli()
    {
        var output = new StringWriter();
        var log = new StringWriter();
        return (new TrellisCli(new CliContext(output, log, interactive: false)), output, log);
    }
}
