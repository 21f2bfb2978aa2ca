namespace Converter.Compute;

/// <summary>
/// One token's sums for the per-module error metrics (docs/exl3-format.md §6.1) of a test output a against a reference
/// b: Σ(a−b)², Σb², Σa², Σab and max|a−b| over its values. A module's rows reduce to these on whichever backend holds
/// them (the GPU forward pass sums a head's logits where they are made), and only the sums cross to the host.
/// </summary>
public readonly record struct TokenDiff(double DiffSq, double RefSq, double TestSq, double Dot, double MaxDiff)
{
    /// <summary>The sums in element order, each value widened to double first.</summary>
    public static TokenDiff Of(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"a token's test ({a.Length}) and reference ({b.Length}) have different widths");
        double dd = 0, bb = 0, aa = 0, ab = 0, maxDiff = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double x = a[i], y = b[i], d = x - y;
            dd += d * d;
            bb += y * y;
            aa += x * x;
            ab += x * y;
            maxDiff = Math.Max(maxDiff, Math.Abs(d));
        }
        return new TokenDiff(dd, bb, aa, ab, maxDiff);
    }

    /// <summary>
    /// Each token's sums of (tokens, width) row-major a against b, in parallel when there are more than
    /// <paramref name="parallelValues"/> values (the sums of each token are the serial loop's either way).
    /// </summary>
    public static TokenDiff[] OfRows(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, int width, int parallelValues = 1 << 20)
    {
        if (a.Length != b.Length || width <= 0 || a.Length % width != 0)
            throw new ArgumentException("rows must have equal (tokens, width) shapes");
        int tokens = a.Length / width;
        var sums = new TokenDiff[tokens];
        if (a.Length >= parallelValues)
            Parallel.For(0, tokens, t => sums[t] = Of(a.Span.Slice(t * width, width), b.Span.Slice(t * width, width)));
        else
        {
            for (int t = 0; t < tokens; t++)
                sums[t] = Of(a.Span.Slice(t * width, width), b.Span.Slice(t * width, width));
        }
        return sums;
    }
}
