using System.Globalization;
using Converter.Conversion.Confirmation;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Eval.Codebooks.Confirmation;
using Converter.Trellis.Codebooks;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>One conversion of a confirmation in the `--json` object.</summary>
public sealed record ConfirmVariantJson(string Codebook, string Multiplier, int Seed, string Directory, double Kl, double Top1, bool Exllamav3CanDecode);

/// <summary>The `codebooks --confirm … --json` object: the settings, the screen that chose the multipliers (null without one), one row per multiplier and every conversion.</summary>
public sealed record ConfirmJson(string Model, string Codebook, double Bits, IReadOnlyList<int> Seeds, string Text, int Rows, int Length, string Device,
    int Reused, double Seconds, ScreenJson? Screen, IReadOnlyList<ConfirmationRow> Results, IReadOnlyList<ConfirmVariantJson> Variants);

/// <summary>
/// Behaviour of `trellis codebooks --confirm MODEL_DIR`: check the model, run the screen when there is one and take
/// its top, convert and compare every variant (<see cref="MultiplierConfirmation"/>), print the table or JSON.
/// </summary>
public static class ConfirmRun
{
    public static int Execute(CodebooksOptions options, ConfirmOptions confirm, CliContext context)
    {
        var settings = confirm.Settings;
        // The model is checked before a screen appends to its journal, so a typo in MODEL_DIR leaves nothing behind.
        ConversionPipeline.Settle(new ConvertSettings { ModelDir = settings.ModelDir, OutDir = settings.OutDir, WorkDir = settings.OutDir, Bits = settings.Bits });
        ScreenOutcome? screened = null;
        if (options.Screen is { } screen)
        {
            screened = ScreenRun.Run(screen, options.PlotPath, options.Threads, context);
            if (!options.Json)
                ScreenRun.PrintTable(screened, screen, context);
        }
        var multipliers = screened is null ? confirm.Multipliers : ConfirmationPlan.TopOf(screened.Ranked, confirm.Kind, confirm.Top ?? 1);
        if (multipliers.Count == 0)
            throw new UsageException("--confirm: the screen ranked no multiplier other than the locked one");
        var variants = ConfirmationPlan.Variants(confirm.Kind, multipliers, confirm.Seeds);
        var result = new MultiplierConfirmation(settings, context.Conversion).Run(variants);

        if (options.Json)
        {
            JsonOutput.Write(context.Output, new ConfirmJson(result.Model, CodebookRegistry.Get(confirm.Kind).Name, settings.Bits, confirm.Seeds, result.Text, result.Rows,
                result.Length, settings.Device, result.Reused, Math.Round(result.Seconds, 2), screened is null ? null : screened.Json(options.Screen!), result.Results,
                result.Variants.Select(v => new ConfirmVariantJson(v.Variant.Codebook.Name, v.Variant.Codebook.MultiplierHex, v.Variant.Seed, v.Directory, v.Kl, v.Top1,
                    v.Exllamav3CanDecode)).ToList()));
        }
        else
        {
            PrintTable(result, confirm, context);
        }
        return ExitCodes.Ok;
    }

    private static void PrintTable(ConfirmationResult result, ConfirmOptions confirm, CliContext context)
    {
        var console = ResultConsole.Create(context);
        var table = ResultConsole.PlainTable(
            $"{CodebookRegistry.Get(confirm.Kind).Name} multipliers converted at {F(result.Bits, "0.##")} bpw, against {Path.GetFileName(Path.TrimEndingDirectorySeparator(result.Model))}: " +
            $"{result.Rows} rows × {result.Length} tokens of {Path.GetFileName(result.Text)}; mean (sd) over conversion seeds; KL ratio paired by seed (95% interval)",
            "multiplier", "seeds", "KL(A,B)", "top-1 agr", "KL / locked", "exllamav3");
        foreach (var r in result.Results)
        {
            string ratio = r.Locked ? "1 (baseline)"
                : F(r.KlRatio, "0.000") + (r.KlRatioLow is { } low && r.KlRatioHigh is { } high ? $" [{F(low, "0.000")}, {F(high, "0.000")}]" : "");
            table.AddTextRow(r.Multiplier + (r.Locked ? " (locked)" : ""), string.Join(',', r.Seeds), Spread(r.Kl, "0.00000"), Spread(r.Top1, "0.0000"), ratio,
                r.Exllamav3Runs ? "runs" : "cannot decode");
        }
        console.Write(table);
        context.Output.WriteLine($"confirm: {result.Variants.Count} conversion(s) ({result.Reused} reused), {F(result.Seconds, "0.0")} s");
    }

    private static string Spread(SampleSpread s, string format) =>
        double.IsNaN(s.StandardDeviation) ? F(s.Mean, format) : $"{F(s.Mean, format)} ({F(s.StandardDeviation, format)})";

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
