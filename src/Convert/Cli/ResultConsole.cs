using Spectre.Console;
using Spectre.Console.Rendering;

namespace Converter.Cli;

/// <summary>The Spectre.Console that result tables are written to: colour on a terminal, plain and wide otherwise.</summary>
public static class ResultConsole
{
    public static IAnsiConsole Create(CliContext context)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(context.Output),
            Ansi = context.Interactive ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = context.Interactive ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!context.Interactive)
            console.Profile.Width = 200;
        return console;
    }

    /// <summary>A table whose title and header are plain text (paths and "[0.25, 0.5)" are not markup).</summary>
    public static Table PlainTable(string title, params string[] columns)
    {
        var table = new Table().Title(Markup.Escape(title));
        foreach (var c in columns)
            table.AddColumn(new TableColumn(new Text(c)));
        return table;
    }

    /// <summary>Adds a row of plain-text cells.</summary>
    public static Table AddTextRow(this Table table, params string[] cells) => table.AddRow(cells.Select(c => (IRenderable)new Text(c)).ToArray());
}
