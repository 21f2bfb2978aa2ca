namespace Converter.Eval.Codebooks.Screening;

/// <summary>
/// A sample mean with its two-sided 95% confidence interval from the sample's own spread (Student's t with n − 1
/// degrees of freedom). Per-tile MSEs of i.i.d. N(0,1) tiles are i.i.d., so this is the interval of the expected MSE.
/// </summary>
public readonly record struct MeanInterval(double Mean, double Low, double High, int Count)
{
    /// <summary>Half the interval's width.</summary>
    public double HalfWidth => (High - Low) / 2;

    /// <summary>True when the interval excludes zero: the paired difference is significant at the 5% level.</summary>
    public bool ExcludesZero => Low > 0 || High < 0;

    public bool Contains(double value) => Low <= value && value <= High;

    /// <summary>The mean of <paramref name="samples"/> and its 95% interval (needs at least two samples).</summary>
    public static MeanInterval Of(ReadOnlySpan<double> samples)
    {
        int n = samples.Length;
        if (n < 2)
            throw new ArgumentException("an interval needs at least two samples", nameof(samples));
        double mean = 0;
        foreach (var s in samples)
            mean += s;
        mean /= n;
        double ss = 0;
        foreach (var s in samples)
            ss += (s - mean) * (s - mean);
        double standardError = Math.Sqrt(ss / (n - 1) / n);
        double half = StudentT.Quantile975(n - 1) * standardError;
        return new MeanInterval(mean, mean - half, mean + half, n);
    }

    /// <summary>
    /// The paired difference <c>mean(a − b)</c> of two measurements on the same items, with its interval from the
    /// spread of the per-item differences: what both share (here the difficulty of each tile) cancels.
    /// </summary>
    public static MeanInterval Paired(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException("paired samples must have the same length");
        var d = new double[a.Length];
        for (int i = 0; i < d.Length; i++)
            d[i] = a[i] - b[i];
        return Of(d);
    }
}

/// <summary>The 97.5% quantile of Student's t, for two-sided 95% intervals.</summary>
public static class StudentT
{
    private const double Z = 1.959963984540054;

    /// <summary>
    /// Cornish–Fisher expansion of t in powers of 1/ν (Abramowitz &amp; Stegun 26.7.5): within 0.2% of the exact quantile
    /// for ν ≥ 3 (ν = 3: 3.179 vs 3.182; ν = 10: 2.2281 vs 2.2281), and exact as ν → ∞. ν = 1 and 2 (a multiplier
    /// confirmation over 2 or 3 conversion seeds) are where the expansion fails (11.3 vs 12.706, 4.27 vs 4.303), so
    /// those two are exact, from the closed forms t₁ = tan(π(p − ½)) and t₂ = (2p − 1)·√(2 / (4p(1 − p))) at p = 0.975.
    /// </summary>
    public static double Quantile975(int degreesOfFreedom)
    {
        if (degreesOfFreedom < 1)
            throw new ArgumentOutOfRangeException(nameof(degreesOfFreedom));
        if (degreesOfFreedom == 1)
            return 12.706204736174698;
        if (degreesOfFreedom == 2)
            return 4.302652729749464;
        double v = degreesOfFreedom, z = Z, z2 = z * z;
        double g1 = (z2 + 1) * z / 4;
        double g2 = ((5 * z2 + 16) * z2 + 3) * z / 96;
        double g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384;
        double g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160;
        return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
    }
}
