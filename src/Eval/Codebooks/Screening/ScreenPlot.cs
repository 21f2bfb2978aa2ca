using Converter.Eval.Reports;

namespace Converter.Eval.Codebooks.Screening;

/// <summary>
/// The `trellis codebooks --screen … --plot` figure: the top candidates' MSE relative to the rate-distortion bound
/// against K with their 95% intervals, next to the reference; and each one's paired difference from the reference by
/// rank, with intervals, so a reader sees at once which leads are larger than the noise of the tiles.
/// </summary>
public static class ScreenPlot
{
    // Candidates are drawn side by side around each K so their interval bars do not overlap.
    private const double Spread = 0.5;

    public static string Render(IReadOnlyList<RankedScreenResult> top, ScreenResult reference, ScreenSettings settings, int? rankBy)
    {
        var entries = new List<(string Name, ScreenResult Result)> { ($"{reference.Multiplier} (exllamav3)", reference) };
        entries.AddRange(top.Select(t => ($"#{t.Rank} {t.Result.Multiplier}", t.Result)));
        var series = new List<ChartSeries>();
        for (int i = 0; i < entries.Count; i++)
        {
            double offset = entries.Count > 1 ? (i / (entries.Count - 1.0) - 0.5) * Spread : 0;
            var perBits = entries[i].Result.PerBits.OrderBy(b => b.Bits).ToList();
            series.Add(new ChartSeries(entries[i].Name,
                perBits.Select(b => (b.Bits + offset, b.Mse / b.RdBound)).ToList(),
                Line: false,
                Intervals: perBits.Select(b => (b.MseLow / b.RdBound, b.MseHigh / b.RdBound)).ToList()));
        }
        double height = Math.Max(380, 60 + 18 * entries.Count);
        var distortion = new SvgLineChart
        {
            Title = $"{settings.Codebook}: MSE on N(0,1) relative to 2^(-2K), {settings.Tiles} tiles, 95% intervals",
            XLabel = "bits per weight K",
            YLabel = "MSE / rate-distortion bound",
            Series = series,
            Width = 640,
            Height = height,
            LegendWidth = 190,
        };

        var differences = settings.Bits.Select(k => new ChartSeries($"K={k}",
            top.Select(t => ((double)t.Rank, 100 * t.Result.At(k).RelativeDifference)).ToList(),
            Line: false,
            Intervals: top.Select(t => (100 * t.Result.At(k).DifferenceLow / t.Result.At(k).ReferenceMse,
                100 * t.Result.At(k).DifferenceHigh / t.Result.At(k).ReferenceMse)).ToList())).ToList();
        differences.Add(new ChartSeries($"{reference.Multiplier} (0)", top.Select(t => ((double)t.Rank, 0.0)).ToList(), Markers: false));
        var paired = new SvgLineChart
        {
            Title = $"Paired difference from {reference.Multiplier}, ranked by {(rankBy is { } k ? $"K={k}" : "the mean over K")}",
            XLabel = "rank",
            YLabel = "MSE difference, % of the reference's",
            Series = differences,
            Width = 600,
            Height = height,
        };
        return SvgLineChart.Document(1250, height + 20, [distortion.Render(0, 10), paired.Render(650, 10)]);
    }
}
