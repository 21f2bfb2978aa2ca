using System.Globalization;
using Converter.Conversion.Reporting;
using Converter.Eval.Codebooks;
using Converter.Formats.IO;
using Converter.Trellis.Codebooks;
using Spectre.Console;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>Behaviour of `trellis codebooks`: run the study, write the optional files, print tables or JSON.</summary>
public static class CodebooksRun
{
    public static int Execute(CodebooksOptions options, CliContext context)
    {
        if (options.Confirm is { } confirm)
            return ConfirmRun.Execute(options, confirm, context);
        if (options.Screen is { } screen)
            return ScreenRun.Execute(screen, options.Json, options.PlotPath, options.Threads, context);
        var tables = options.Codebooks.Select(context.Codebooks.Get).ToList();
        if (options.DumpTableDir is { } dir)
            DumpTables(dir, tables, context);

        var settings = new CodebookStudySettings(options.Codebooks, options.Bits, options.Tiles, options.Seed, options.BestScale, options.Threads);
        var results = ProgressDisplay.Run(context, "codebooks", options.Codebooks.Count * options.Bits.Count,
            progress => new CodebookStudy(context.Codebooks).Run(settings, new StepReporter(progress)));

        if (options.PlotPath is { } plot)
        {
            AtomicFile.WriteAllText(plot, CodebookPlot.Render(results, tables));
            context.Log.WriteLine($"codebooks: wrote plot {plot}");
        }
        if (options.Json)
            JsonOutput.Write(context.Output, new { results });
        else
            PrintTables(options, results, tables, context);
        return ExitCodes.Ok;
    }

    private static void DumpTables(string dir, IReadOnlyList<CodebookTable> tables, CliContext context)
    {
        Directory.CreateDirectory(dir);
        foreach (var table in tables)
        {
            var path = Path.Combine(dir, $"{table.Spec.Name}-{table.Spec.MultiplierHex}.f16");
            var bits = new byte[CodebookTable.Size * 2];
            for (int s = 0; s < CodebookTable.Size; s++)
                BitConverter.TryWriteBytes(bits.AsSpan(2 * s), BitConverter.HalfToUInt16Bits((Half)table[s]));
            AtomicFile.WriteAllBytes(path, bits);
            context.Log.WriteLine($"codebooks: wrote {path}");
        }
    }

    private static void PrintTables(CodebooksOptions options, IReadOnlyList<CodebookStudyResult> results, IReadOnlyList<CodebookTable> tables, CliContext context)
    {
        var console = ResultConsole.Create(context);

        var stats = new Table().Title("Codebooks (all 65536 states)").AddColumns("codebook", "multiplier", "RMS", "mean", "min", "max");
        foreach (var t in tables)
            stats.AddRow(t.Spec.Name, t.Spec.MultiplierHex, F(t.Rms, "0.00000000"), F(t.Mean, "+0.00000;-0.00000"), F(t.Min, "0.000000"), F(t.Max, "0.000000"));
        console.Write(stats);

        var table = new Table()
            .Title($"MSE per weight, {options.Tiles} tiles of N(0,1), seed {options.Seed}, codebook at unit RMS")
            .AddColumns("codebook", "multiplier", "K", "MSE", "MSE / bound");
        if (options.BestScale)
            table.AddColumns("best scale", "MSE @ best");
        table.AddColumns("RD bound", "Lloyd-Max", "MSE / Lloyd-Max", "time");
        foreach (var r in results)
        {
            var row = new List<string> { r.Codebook, r.Multiplier, r.Bits.ToString(CultureInfo.InvariantCulture), F(r.Mse, "0.000000"), F(r.Mse / r.RdBound, "0.000") };
            if (options.BestScale)
                row.AddRange([F(r.BestScale ?? double.NaN, "0.0000"), F(r.MseBestScale ?? double.NaN, "0.000000")]);
            row.AddRange([F(r.RdBound, "0.000000"), F(r.LloydMax, "0.000000"), F(r.Mse / r.LloydMax, "0.000"), F(r.Seconds, "0.0") + " s"]);
            table.AddRow(row.ToArray());
        }
        console.Write(table);
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
