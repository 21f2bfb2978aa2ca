using System.Globalization;
using System.Text;

namespace Converter.Eval.Reports;

/// <summary>One named series of a bar chart: a value per category (null = no bar).</summary>
public sealed record BarSeries(string Name, IReadOnlyList<double?> Values);

/// <summary>
/// A small hand-written SVG grouped bar chart, the companion of <see cref="SvgLineChart"/> (same palette, fonts and
/// legend): one group per category, one bar per series (paler once the palette repeats), linear or log₁₀ value axis.
/// </summary>
public sealed class SvgBarChart
{
    public required string Title { get; init; }
    public required string XLabel { get; init; }
    public required string YLabel { get; init; }
    public required IReadOnlyList<string> Categories { get; init; }
    public required IReadOnlyList<BarSeries> Series { get; init; }
    public double Width { get; init; } = 560;
    public double Height { get; init; } = 360;
    public bool LogY { get; init; }

    /// <summary>The chart as an SVG &lt;g&gt; element translated to (x, y).</summary>
    public string Render(double x, double y)
    {
        const double left = 64, right = 150, top = 34, bottom = 48;
        double plotW = Width - left - right, plotH = Height - top - bottom;
        var values = Series.SelectMany(s => s.Values).Where(v => v is not null).Select(v => v!.Value);
        var axis = YAxis.For(values, LogY, LogY ? null : 0);
        double Py(double v) => top + plotH - axis.Fraction(v) * plotH;
        double baseline = LogY ? top + plotH : Py(0);

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate({F(x)},{F(y)})\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left + plotW / 2)}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{Esc(Title)}</text>\n");
        foreach (var t in axis.Ticks)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(left)}\" y1=\"{F(Py(t))}\" x2=\"{F(left + plotW)}\" y2=\"{F(Py(t))}\" stroke=\"#ddd\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left - 6)}\" y=\"{F(Py(t) + 4)}\" text-anchor=\"end\">{SvgLineChart.Label(t)}</text>\n");
        }

        double groupW = plotW / Math.Max(1, Categories.Count);
        double barW = groupW * 0.8 / Math.Max(1, Series.Count);
        for (int c = 0; c < Categories.Count; c++)
        {
            double gx = left + c * groupW;
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(gx + groupW / 2)}\" y=\"{F(top + plotH + 15)}\" text-anchor=\"middle\">{Esc(Categories[c])}</text>\n");
            for (int s = 0; s < Series.Count; s++)
            {
                if (c >= Series[s].Values.Count || Series[s].Values[c] is not { } v || !double.IsFinite(v) || (LogY && v <= 0))
                    continue;
                double bx = gx + groupW * 0.1 + s * barW, by = Math.Min(Py(v), baseline), bh = Math.Abs(baseline - Py(v));
                sb.Append(CultureInfo.InvariantCulture,
                    $"<rect x=\"{F(bx)}\" y=\"{F(by)}\" width=\"{F(Math.Max(barW - 1, 1))}\" height=\"{F(bh)}\" fill=\"{Color(s)}\"{Pale(s)}><title>{Esc(Series[s].Name)}: {v.ToString("G4", CultureInfo.InvariantCulture)}</title></rect>");
            }
            sb.Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(left)}\" y=\"{F(top)}\" width=\"{F(plotW)}\" height=\"{F(plotH)}\" fill=\"none\" stroke=\"#333\"/>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left + plotW / 2)}\" y=\"{F(Height - 10)}\" text-anchor=\"middle\">{Esc(XLabel)}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(16,{F(top + plotH / 2)}) rotate(-90)\" text-anchor=\"middle\">{Esc(YLabel)}</text>\n");
        for (int s = 0; s < Series.Count; s++)
        {
            double ly = top + 10 + s * 18;
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(left + plotW + 12)}\" y=\"{F(ly - 6)}\" width=\"20\" height=\"12\" fill=\"{Color(s)}\"{Pale(s)}/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left + plotW + 36)}\" y=\"{F(ly + 4)}\">{Esc(Series[s].Name)}</text>\n");
        }
        sb.Append("</g>\n");
        return sb.ToString();
    }

    private static string Color(int series) => SvgLineChart.Palette[series % SvgLineChart.Palette.Length];

    private static string Pale(int series) => series >= SvgLineChart.Palette.Length ? " fill-opacity=\"0.45\"" : "";

    private static string F(double v) => SvgLineChart.F(v);

    private static string Esc(string s) => SvgLineChart.Escape(s);
}
