using Converter.Compute;
using Converter.Regularize.Quantization;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.ScaleSearch;

/// <summary>Outcome of <see cref="ProxyScaleSearch"/>: the chosen g and the proxy error of every scale tried.</summary>
public sealed record ProxyScaleResult(double Scale, IReadOnlyList<(double Scale, double Proxy)> Evaluations);

/// <summary>
/// Chooses the global scale g by what LDLQ actually achieves (issue 13 part 3): the tile-MSE scale g₀ and multiples
/// g₀·(1 ± <see cref="Step"/>), walking on while the edge is best, are each run through LDLQ on a sample of 128-column stripes, and the one with the
/// lowest proxy error tr(EᵀHE)/tr(WᵀHW) wins. The plain tile MSE ignores both the error feedback (which makes the
/// targets of later blocks larger than W's own) and the Hessian's weighting of rows.
/// </summary>
/// <remarks>
/// LDLQ and the proxy are independent per output column (feedback runs along k only), so a column sample gives an
/// unbiased estimate of both traces; the right Hadamard has already mixed the columns, so a few stripes suffice.
/// One Hessian (in the basis of g₀'s input scales) and one factor serve every candidate: su/g differs from su/g₀ by a
/// constant factor up to fp16 rounding, which scales H' by a constant — the proxy ratio and the LDL factor are
/// invariant to that.
/// </remarks>
public static class ProxyScaleSearch
{
    /// <summary>Relative spacing of the candidates.</summary>
    public const double Step = 0.06;

    /// <summary>Candidates on each side of g₀ before the walk: g₀·(1 ± Step).</summary>
    private const int Side = 1;

    /// <summary>How far from g₀ the walk may go when the best is at the edge of what was tried.</summary>
    private const int MaxSteps = 4;

    /// <summary>Stripes of 128 columns sampled at least (all when the layer has fewer): the candidates share the sample, so their comparison is paired.</summary>
    private const int MinStripes = 2;

    private const int Stripe = 128;

    /// <param name="w">W (k, n) after the output-side regularization (§3.3), before the input scales.</param>
    /// <param name="su0">Input scales of g = 1 (fp32, before the division by g and the fp16 rounding).</param>
    /// <param name="scale0">The tile-MSE scale g₀.</param>
    /// <param name="factor">H' (k, k) in the basis of su0/g₀, the one the proxy comes from, and its factor (formed by <paramref name="ldlq"/>).</param>
    public static ProxyScaleResult Search(ReadOnlySpan<float> w, int k, int n, ReadOnlySpan<float> su0, double scale0, BasisFactor factor,
        ITileEncoder encoder, ILdlqSolver ldlq, IDenseAlgebra algebra)
    {
        if (!factor.Factored || factor.K != k)
            throw new ArgumentException($"the scale search needs a {k}×{k} factored Hessian", nameof(factor));
        var columns = SampleColumns(n);
        int m = columns.Length;
        var sample = new float[ArrayLength.Of(k, m, "scale search sample")];
        for (int r = 0; r < k; r++)
        {
            var row = w.Slice(r * n, n);
            for (int c = 0; c < m; c++)
                sample[r * m + c] = row[columns[c]];
        }
        var scaled = su0.ToArray();
        var target = new float[sample.Length];
        var tried = new SortedDictionary<int, double>();
        double At(int i)
        {
            if (tried.TryGetValue(i, out var known))
                return known;
            double g = ScaleOf(scale0, i);
            var su = scaled.Select(v => LinearRegularizer.RoundToHalf((float)(v / g))).ToArray();
            LinearRegularizer.ApplyInputSide(sample, target, k, m, su);
            var q = ldlq.Quantize(target, k, m, factor, encoder).Quantized;
            double proxy = ProxyError.Compute(target, q, factor, m, algebra);
            tried[i] = proxy;
            return proxy;
        }

        int best = 0;
        for (int i = -Side; i <= Side; i++)
        {
            if (At(i) < At(best))
                best = i;
        }
        // Walk on while the best sits at the edge of what was tried.
        while (best == tried.Keys.Min() && best > -MaxSteps && ScaleOf(scale0, best - 1) > 0 && At(best - 1) < At(best))
            best--;
        while (best == tried.Keys.Max() && best < MaxSteps && At(best + 1) < At(best))
            best++;
        return new ProxyScaleResult(ScaleOf(scale0, best), tried.Select(t => (ScaleOf(scale0, t.Key), t.Value)).ToList());
    }

    private static double ScaleOf(double scale0, int step) => scale0 * (1 + step * Step);

    /// <summary>Column indices of evenly spaced 128-column stripes: a quarter of them, at least <see cref="MinStripes"/>.</summary>
    public static int[] SampleColumns(int n)
    {
        int stripes = n / Stripe;
        int take = Math.Min(stripes, Math.Max(MinStripes, (stripes + 3) / 4));
        var columns = new int[take * Stripe];
        for (int s = 0; s < take; s++)
        {
            int first = (int)((long)s * stripes / take) * Stripe;
            for (int c = 0; c < Stripe; c++)
                columns[s * Stripe + c] = first + c;
        }
        return columns;
    }
}
