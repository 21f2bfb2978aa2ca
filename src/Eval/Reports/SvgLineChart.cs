using System.Globalization;
using System.Text;

namespace Converter.Eval.Reports;

/// <summary>
/// One named line of points on a chart; without <paramref name="Line"/> only the markers are drawn. <paramref name="Intervals"/>,
/// when given, holds one (low, high) per point, drawn as a vertical bar (a confidence interval).
/// </summary>
public sealed record ChartSeries(string Name, IReadOnlyList<(double X, double Y)> Points, bool Markers = true, bool Line = true,
    IReadOnlyList<(double Low, double High)>? Intervals = null);

/// <summary>
/// A small hand-written SVG line chart (no plotting library is available, DESIGN.md "Stack"): linear axes with
/// "nice" ticks (or a log₁₀ y axis), one colour per series (dashed once the palette repeats), a legend. Rendered as a positioned group so several
/// charts share a page.
/// </summary>
public sealed class SvgLineChart
{
    internal static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];

    public required string Title { get; init; }
    public required string XLabel { get; init; }
    public required string YLabel { get; init; }
    public required IReadOnlyList<ChartSeries> Series { get; init; }
    public double Width { get; init; } = 560;
    public double Height { get; init; } = 360;
    public double? YMin { get; init; }

    /// <summary>Room right of the plot for the legend.</summary>
    public double LegendWidth { get; init; } = 150;

    /// <summary>Logarithmic y axis (decades); points with y ≤ 0 are left out.</summary>
    public bool LogY { get; init; }

    /// <summary>The chart as an SVG &lt;g&gt; element translated to (x, y).</summary>
    public string Render(double x, double y)
    {
        const double left = 64, top = 34, bottom = 48;
        double right = LegendWidth;
        double plotW = Width - left - right, plotH = Height - top - bottom;
        var points = Series.SelectMany(s => s.Points.Concat(IntervalEnds(s))).Where(Plottable).ToList();
        double xMin = points.Count > 0 ? points.Min(p => p.X) : 0, xMax = points.Count > 0 ? points.Max(p => p.X) : 1;
        var xTicks = NiceTicks(xMin, xMax);
        (xMin, xMax) = (Math.Min(xMin, xTicks[0]), Math.Max(xMax, xTicks[^1]));
        var yAxis = YAxis.For(points.Select(p => p.Y), LogY, YMin);
        var yTicks = yAxis.Ticks;
        double Px(double v) => left + (xMax > xMin ? (v - xMin) / (xMax - xMin) : 0.5) * plotW;
        double Py(double v) => top + plotH - yAxis.Fraction(v) * plotH;

        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate({F(x)},{F(y)})\" font-family=\"sans-serif\" font-size=\"11\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left + plotW / 2)}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{Escape(Title)}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"{F(left)}\" y=\"{F(top)}\" width=\"{F(plotW)}\" height=\"{F(plotH)}\" fill=\"none\" stroke=\"#333\"/>\n");
        foreach (var t in xTicks)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(Px(t))}\" y1=\"{F(top)}\" x2=\"{F(Px(t))}\" y2=\"{F(top + plotH)}\" stroke=\"#ddd\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(Px(t))}\" y=\"{F(top + plotH + 15)}\" text-anchor=\"middle\">{Label(t)}</text>\n");
        }
        foreach (var t in yTicks)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(left)}\" y1=\"{F(Py(t))}\" x2=\"{F(left + plotW)}\" y2=\"{F(Py(t))}\" stroke=\"#ddd\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left - 6)}\" y=\"{F(Py(t) + 4)}\" text-anchor=\"end\">{Label(t)}</text>\n");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left + plotW / 2)}\" y=\"{F(Height - 10)}\" text-anchor=\"middle\">{Escape(XLabel)}</text>\n");
        sb.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(16,{F(top + plotH / 2)}) rotate(-90)\" text-anchor=\"middle\">{Escape(YLabel)}</text>\n");

        for (int i = 0; i < Series.Count; i++)
        {
            var s = Series[i];
            string color = Palette[i % Palette.Length];
            string dash = i >= Palette.Length ? " stroke-dasharray=\"5,3\"" : "";
            var pts = s.Points.Where(Plottable).ToList();
            if (pts.Count > 1 && s.Line)
            {
                sb.Append("<polyline fill=\"none\" stroke-width=\"1.8\"").Append(dash).Append(" stroke=\"").Append(color).Append("\" points=\"");
                sb.AppendJoin(' ', pts.Select(p => $"{F(Px(p.X))},{F(Py(p.Y))}"));
                sb.Append("\"/>\n");
            }
            if (s.Intervals is { } intervals)
            {
                for (int p = 0; p < Math.Min(intervals.Count, s.Points.Count); p++)
                {
                    var (px, (lo, hi)) = (s.Points[p].X, intervals[p]);
                    if (!Plottable((px, lo)) || !Plottable((px, hi)))
                        continue;
                    double cx = Px(px), y0 = Py(lo), y1 = Py(hi);
                    sb.Append(CultureInfo.InvariantCulture, $"<path d=\"M{F(cx)},{F(y0)}V{F(y1)}M{F(cx - 3)},{F(y0)}H{F(cx + 3)}M{F(cx - 3)},{F(y1)}H{F(cx + 3)}\" stroke=\"{color}\" stroke-width=\"1.2\" fill=\"none\"/>");
                }
                sb.Append('\n');
            }
            if (s.Markers)
            {
                foreach (var p in pts)
                    sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(Px(p.X))}\" cy=\"{F(Py(p.Y))}\" r=\"3\" fill=\"{color}\"/>");
                sb.Append('\n');
            }
            double ly = top + 10 + i * 18;
            if (s.Line)
                sb.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(left + plotW + 12)}\" y1=\"{F(ly)}\" x2=\"{F(left + plotW + 32)}\" y2=\"{F(ly)}\" stroke=\"{color}\" stroke-width=\"2.5\"{dash}/>");
            else
                sb.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{F(left + plotW + 22)}\" cy=\"{F(ly)}\" r=\"3.5\" fill=\"{color}\"/>");
            sb.Append(CultureInfo.InvariantCulture, $"<text x=\"{F(left + plotW + 36)}\" y=\"{F(ly + 4)}\">{Escape(s.Name)}</text>\n");
        }
        sb.Append("</g>\n");
        return sb.ToString();
    }

    /// <summary>A complete standalone SVG document holding the given chart groups.</summary>
    public static string Document(double width, double height, IEnumerable<string> groups) =>
        $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(width)}\" height=\"{F(height)}\" viewBox=\"0 0 {F(width)} {F(height)}\">\n" +
        "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + string.Concat(groups) + "</svg>\n";

    private static IEnumerable<(double X, double Y)> IntervalEnds(ChartSeries s) =>
        s.Intervals is null ? [] : s.Points.Zip(s.Intervals).SelectMany(z => new[] { (z.First.X, z.Second.Low), (z.First.X, z.Second.High) });

    private bool Plottable((double X, double Y) p) => double.IsFinite(p.X) && double.IsFinite(p.Y) && (!LogY || p.Y > 0);

    /// <summary>About five round-numbered ticks covering [min, max].</summary>
    public static double[] NiceTicks(double min, double max)
    {
        if (!(max > min))
        {
            double pad = Math.Abs(min) > 0 ? Math.Abs(min) * 0.1 : 1;
            (min, max) = (min - pad, max + pad);
        }
        double raw = (max - min) / 5, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1.0, 2.0, 2.5, 5.0, 10.0 }.Select(m => m * magnitude).First(s => s >= raw);
        double start = Math.Floor(min / step) * step;
        var ticks = new List<double>();
        for (double t = start; t <= max + step * 0.999; t += step)
            ticks.Add(Math.Round(t / step) * step);
        return ticks.ToArray();
    }

    internal static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);

    internal static string Label(double v) => v.ToString("G4", CultureInfo.InvariantCulture);

    public static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");
}
