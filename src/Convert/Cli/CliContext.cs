using Converter.Trellis.Codebooks;
using Spectre.Console;

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

    public CodebookTableCache Codebooks { get; } = new();

    /// <summary>
    /// A Spectre console over <see cref="Output"/> for result tables: colour on a terminal, plain and wide when
    /// redirected so tables do not wrap in logs.
    /// </summary>
    public IAnsiConsole ResultConsole()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Output),
            Ansi = Interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = Interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!Interactive)
            console.Profile.Width = 200;
        return console;
    }

    public static CliContext ForConsole() =>
        new(Console.Out, Console.Error, !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb"));
}
