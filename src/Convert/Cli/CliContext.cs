using Converter.Conversion;
using Converter.Trellis.Codebooks;

namespace Converter.Cli;

/// <summary>
/// What every command runs against: where results and logs go, whether a person is watching (progress bars and
/// colour) and the per-run caches. Passed explicitly so tests can capture output and nothing is global.
/// </summary>
public sealed class CliContext(TextWriter output, TextWriter log, bool interactive)
{
    /// <summary>Results (tables, or the JSON object with --json).</summary>
    public TextWriter Output { get; } = output;

    /// <summary>Progress and diagnostics; kept off stdout so --json output stays parseable.</summary>
    public TextWriter Log { get; } = log;

    /// <summary>True when stderr is a terminal: live progress display instead of log lines.</summary>
    public bool Interactive { get; } = interactive;

    /// <summary>What the conversion library reports to: this command's log and progress display.</summary>
    public ConversionSession Conversion { get; } = new(log, ProgressDisplay.For(log, interactive));

    public CodebookTableCache Codebooks => Conversion.Codebooks;

    public static CliContext ForConsole() =>
        new(Console.Out, Console.Error, !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb"));
}
