namespace Converter.Eval.Reports;

/// <summary>
/// A chart's value axis: linear with "nice" ticks, or log₁₀ from the 1-2-5 step at or below the smallest value to
/// the one at or above the largest, with ticks at 1, 2, 5 × 10ⁿ (only decades when the values span more than three). <see cref="Fraction"/> maps a value to 0 (bottom) … 1 (top).
/// </summary>
internal sealed class YAxis
{
    private readonly double _lo, _hi;
    private readonly bool _log;

    private YAxis(double lo, double hi, bool log, double[] ticks)
    {
        (_lo, _hi, _log, Ticks) = (lo, hi, log, ticks);
    }

    public double[] Ticks { get; }

    public double Fraction(double v)
    {
        double t = _log ? Math.Log10(v) : v;
        return _hi > _lo ? (t - _lo) / (_hi - _lo) : 0.5;
    }

    public static YAxis For(IEnumerable<double> values, bool log, double? min = null)
    {
        var finite = values.Where(v => double.IsFinite(v) && (!log || v > 0)).ToList();
        if (!log)
        {
            double first = min ?? (finite.Count > 0 ? finite.Min() : 0), last = finite.Count > 0 ? finite.Max() : 1;
            var ticks = SvgLineChart.NiceTicks(first, last);
            return new YAxis(Math.Min(first, ticks[0]), Math.Max(last, ticks[^1]), false, ticks);
        }
        double vMin = finite.Count > 0 ? finite.Min() : 0.1, vMax = finite.Count > 0 ? finite.Max() : 1;
        if (min is > 0)
            vMin = Math.Min(vMin, min.Value);
        // Ticks at 1, 2, 5 × 10ⁿ when the values span at most three decades, else at the decades only.
        double[] steps = Math.Log10(vMax / vMin) > 3 ? [1.0] : [1.0, 2.0, 5.0];
        var candidates = new List<double>();
        for (double e = Math.Floor(Math.Log10(vMin)) - 1; e <= Math.Ceiling(Math.Log10(vMax)) + 1; e++)
            candidates.AddRange(steps.Select(m => m * Math.Pow(10, e)));
        double lo = candidates.Last(c => c <= vMin * (1 + 1e-12)), hi = candidates.First(c => c >= vMax * (1 - 1e-12));
        if (hi <= lo)
            hi = candidates.First(c => c > lo);
        var logTicks = candidates.Where(c => c >= lo && c <= hi).ToArray();
        double eLo = Math.Log10(lo), eHi = Math.Log10(hi);
        return new YAxis(eLo, eHi, true, logTicks);
    }
}
