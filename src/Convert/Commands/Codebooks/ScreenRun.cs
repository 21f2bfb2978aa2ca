using System.Globalization;
using Converter.Conversion.Pipeline;
using Converter.Conversion.Reporting;
using Converter.Cuda.Trellis;
using Converter.Eval.Codebooks.Screening;
using Converter.Formats.IO;
using Converter.Trellis.Codebooks;
using Converter.Trellis.Viterbi;
using Spectre.Console;

namespace Converter.Cli.Commands.Codebooks;

/// <summary>The `codebooks --json` object of a screen: its settings, the reference's own result and every candidate ranked.</summary>
public sealed record ScreenJson(string Codebook, string Reference, IReadOnlyList<int> Bits, int Tiles, int Seed, int? RankBy, string Device,
    ScreenResult ReferenceResult, IReadOnlyList<RankedScreenResult> Results);

/// <summary>What a screen found: every candidate ranked, the reference's own result, the candidates its list file named, and the encoder it ran on.</summary>
public sealed record ScreenOutcome(IReadOnlyList<RankedScreenResult> Ranked, ScreenResult Reference, IReadOnlySet<string> Listed, string Device)
{
    public ScreenJson Json(ScreenOptions screen)
    {
        var settings = screen.Settings;
        return new ScreenJson(settings.Codebook, settings.Reference.MultiplierHex, settings.Bits, settings.Tiles, settings.Seed, screen.RankBy, Device, Reference, Ranked);
    }
}

/// <summary>
/// Behaviour of `trellis codebooks --screen FILE | --random N`: gather the candidates, skip those the journal already
/// holds, measure the rest on the chosen device (appending each to the journal as it completes), then rank
/// everything the journal holds (or this run's results without one) and print, plot or emit JSON.
/// </summary>
public static class ScreenRun
{
    public static int Execute(ScreenOptions screen, bool json, string? plotPath, int threads, CliContext context)
    {
        var outcome = Run(screen, plotPath, threads, context);
        if (json)
            JsonOutput.Write(context.Output, outcome.Json(screen));
        else
            PrintTable(outcome, screen, context);
        return ExitCodes.Ok;
    }

    /// <summary>Measures what the journal does not hold yet, ranks everything, and writes the top list and the plot when asked.</summary>
    public static ScreenOutcome Run(ScreenOptions screen, string? plotPath, int threads, CliContext context)
    {
        var settings = screen.Settings;
        var listed = screen.ListPath is { } list ? MultiplierList.Read(list, settings.Kind) : [];
        var candidates = listed.Concat(MultiplierList.Random(screen.RandomCount, screen.RandomSeed)).Distinct().ToList();
        var journal = screen.JournalPath is { } path ? ScreenJournal.Open(path, settings) : null;
        var done = journal?.Done ?? new HashSet<uint>();
        var todo = candidates.Where(m => !done.Contains(m)).ToList();

        using var backend = ComputeBackend.Open(screen.Device, context.Log, "codebooks");
        using var cuda = backend.Cuda is { } c ? new CudaTableEncoders(c) : null;
        ITableEncoders encoders = cuda is null ? new CpuTableEncoders(threads) : cuda;
        context.Log.WriteLine($"codebooks: screen of {candidates.Count} multiplier(s), {todo.Count} to measure" +
            (journal is null ? "" : $" ({candidates.Count - todo.Count} already in {screen.JournalPath})") + $"; {settings.Describe()}; encoder {encoders.Device}");

        var screenRunner = new MultiplierScreen(settings, encoders);
        var reference = screenRunner.Measure(settings.Reference.Multiplier);
        var fresh = ProgressDisplay.Run(context, "screen", todo.Count, steps =>
        {
            var results = new List<ScreenResult>();
            foreach (var m in todo)
            {
                steps.Step($"0x{m:X8}");
                var result = screenRunner.Measure(m);
                journal?.Append(result);
                results.Add(result);
            }
            return results;
        });
        var ranked = ScreenRanking.Rank(journal?.Results ?? fresh, screen.RankBy);

        if (screen.TopListPath is { } topList)
        {
            AtomicFile.WriteAllText(topList, TopList(ranked.Take(screen.Top).ToList(), settings, screen.RankBy));
            context.Log.WriteLine($"codebooks: wrote the top {Math.Min(screen.Top, ranked.Count)} to {topList}");
        }
        if (plotPath is not null)
        {
            AtomicFile.WriteAllText(plotPath, ScreenPlot.Render(ranked.Take(screen.Top).ToList(), reference, settings, screen.RankBy));
            context.Log.WriteLine($"codebooks: wrote plot {plotPath}");
        }
        return new ScreenOutcome(ranked, reference, listed.Select(m => $"0x{m:X8}").ToHashSet(), encoders.Device);
    }

    /// <summary>The top of the ranking as a list file (<see cref="MultiplierList.Read"/>), each line's paired differences as its comment.</summary>
    private static string TopList(IReadOnlyList<RankedScreenResult> top, ScreenSettings settings, int? rankBy)
    {
        var text = new System.Text.StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"# top {top.Count} of a screen: {settings.Describe()}; ranked by {(rankBy is { } k ? $"K={k}" : "the mean over K")}");
        foreach (var r in top)
        {
            var diffs = string.Join(", ", r.Result.PerBits.Select(b => $"K={b.Bits} {RelativeDifference(b)}"));
            text.AppendLine(CultureInfo.InvariantCulture, $"{r.Result.Multiplier}  # rank {r.Rank}: {diffs}");
        }
        return text.ToString();
    }

    /// <summary>The screen's table: the reference, the top of the ranking and every listed candidate ranked below it, and the counts of significant ones.</summary>
    public static void PrintTable(ScreenOutcome outcome, ScreenOptions screen, CliContext context)
    {
        var (ranked, reference, listed, settings) = (outcome.Ranked, outcome.Reference, outcome.Listed, screen.Settings);
        var console = ResultConsole.Create(context);
        // The top of the ranking, then any candidate of the list file ranked below it (the ones a user asked about).
        var shown = ranked.Take(screen.Top).Concat(ranked.Skip(screen.Top).Where(r => listed.Contains(r.Result.Multiplier))).ToList();
        string by = screen.RankBy is { } k ? $"K={k}" : "the mean over K";
        var columns = new List<string> { "rank", "multiplier", "RMS", "mean" };
        foreach (var bits in settings.Bits)
            columns.AddRange([$"MSE K={bits} (95%)", $"vs {reference.Multiplier} K={bits} (95%)"]);
        var table = ResultConsole.PlainTable(
            $"{settings.Codebook} multipliers ranked by {by}: {ranked.Count} screened on {settings.Tiles} tiles of N(0,1), seed {settings.Seed}; * = paired difference significant at 5%",
            columns.ToArray());
        table.AddTextRow(Row("ref", reference, settings, listed: false));
        foreach (var r in shown)
            table.AddTextRow(Row(r.Rank.ToString(CultureInfo.InvariantCulture), r.Result, settings, listed.Contains(r.Result.Multiplier)));
        console.Write(table);
        foreach (var bits in settings.Bits)
        {
            int better = ranked.Count(r => r.Result.At(bits).Significant && r.Result.At(bits).Difference < 0);
            int worse = ranked.Count(r => r.Result.At(bits).Significant && r.Result.At(bits).Difference > 0);
            context.Output.WriteLine($"K={bits}: {better} of {ranked.Count} significantly below {reference.Multiplier}, {worse} above " +
                "(each at the 5% level: among many candidates about 2.5% land below by chance, and the top of a ranking is chosen on these very tiles; " +
                "re-screen it with another --seed to confirm)");
        }
    }

    private static string[] Row(string rank, ScreenResult r, ScreenSettings settings, bool listed)
    {
        var cells = new List<string> { rank, r.Multiplier + (listed ? " (listed)" : ""), F(r.Rms, "0.00000"), F(r.Mean, "+0.00000;-0.00000") };
        foreach (var bits in settings.Bits)
        {
            var b = r.At(bits);
            cells.Add($"{F(b.Mse, "0.000000")} ±{F((b.MseHigh - b.MseLow) / 2, "0.000000")}");
            cells.Add(RelativeDifference(b) + (b.Significant ? " *" : ""));
        }
        return cells.ToArray();
    }

    /// <summary>The paired difference relative to the reference's MSE with its 95% interval, in percent: "-0.595% [-0.727, -0.463]".</summary>
    private static string RelativeDifference(ScreenBitsResult b)
    {
        const string signed = "+0.000;-0.000";
        return $"{F(100 * b.RelativeDifference, signed)}% [{F(100 * b.DifferenceLow / b.ReferenceMse, signed)}, {F(100 * b.DifferenceHigh / b.ReferenceMse, signed)}]";
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
}
