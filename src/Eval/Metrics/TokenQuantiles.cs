namespace Converter.Eval.Metrics;

/// <summary>Order statistics of per-token values with torch's definitions, so figures compare with exllamav3's.</summary>
public static class TokenQuantiles
{
    /// <summary>torch.median: the lower of the two middle values for an even count (no averaging).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = Sorted(values);
        return sorted.Length == 0 ? double.NaN : sorted[(sorted.Length - 1) / 2];
    }

    /// <summary>torch.quantile with linear interpolation: position q·(n−1) between the neighbouring sorted values.</summary>
    public static double Quantile(IEnumerable<double> values, double q)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(q, 0.0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(q, 1.0);
        var sorted = Sorted(values);
        if (sorted.Length == 0)
            return double.NaN;
        double position = q * (sorted.Length - 1);
        int lower = (int)Math.Floor(position);
        int upper = Math.Min(lower + 1, sorted.Length - 1);
        return sorted[lower] + (position - lower) * (sorted[upper] - sorted[lower]);
    }

    private static double[] Sorted(IEnumerable<double> values)
    {
        var array = values.ToArray();
        Array.Sort(array);
        return array;
    }
}
