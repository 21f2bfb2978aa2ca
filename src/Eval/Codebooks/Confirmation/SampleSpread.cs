namespace Converter.Eval.Codebooks.Confirmation;

/// <summary>The mean and sample standard deviation (n − 1) of a few values; the deviation is NaN for one value.</summary>
public readonly record struct SampleSpread(double Mean, double StandardDeviation, int Count)
{
    public static SampleSpread Of(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
            throw new ArgumentException("a spread needs at least one value", nameof(values));
        double mean = values.Average();
        double sd = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : double.NaN;
        return new SampleSpread(mean, sd, values.Count);
    }
}
