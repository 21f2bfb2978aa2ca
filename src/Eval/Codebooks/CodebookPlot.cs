using Converter.Eval.Reports;
using Converter.Trellis.Codebooks;

namespace Converter.Eval.Codebooks;

/// <summary>The `trellis codebooks --plot` figure: distortion over the bound against K, and each codebook's value histogram.</summary>
public static class CodebookPlot
{
    private const int HistogramBins = 96;

    public static string Render(IReadOnlyList<CodebookStudyResult> results, IReadOnlyList<CodebookTable> tables)
    {
        var series = results
            .GroupBy(r => Label(r.Codebook, r.Multiplier))
            .Select(g => new ChartSeries(g.Key, g.OrderBy(r => r.Bits).Select(r => ((double)r.Bits, r.Mse / r.RdBound)).ToList()))
            .ToList();
        var lloyd = results.GroupBy(r => r.Bits).OrderBy(g => g.Key).Select(g => ((double)g.Key, g.First().LloydMax / g.First().RdBound)).ToList();
        series.Add(new ChartSeries("Lloyd-Max scalar", lloyd));
        var distortion = new SvgLineChart
        {
            Title = "Trellis distortion on N(0,1), relative to 2^(-2K)",
            XLabel = "bits per weight K",
            YLabel = "MSE / rate-distortion bound",
            Series = series,
            YMin = 1,
        };

        var histogram = new SvgLineChart
        {
            Title = "Codebook values (all 65536 states)",
            XLabel = "value",
            YLabel = "density",
            Series = tables.Select(t => new ChartSeries(Label(t.Spec.Name, t.Spec.MultiplierHex), Histogram(t), Markers: false)).ToList(),
            YMin = 0,
        };
        return SvgLineChart.Document(1140, 380, [distortion.Render(0, 10), histogram.Render(570, 10)]);
    }

    private static string Label(string codebook, string multiplier) => $"{codebook} {multiplier}";

    private static List<(double, double)> Histogram(CodebookTable table)
    {
        const double lo = -4, hi = 4, width = (hi - lo) / HistogramBins;
        var counts = new int[HistogramBins];
        foreach (var v in table.Values)
            counts[Math.Clamp((int)((v - lo) / width), 0, HistogramBins - 1)]++;
        return counts.Select((c, i) => (lo + (i + 0.5) * width, c / (CodebookTable.Size * width))).ToList();
    }
}
