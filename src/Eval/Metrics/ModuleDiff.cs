namespace Converter.Eval.Metrics;

/// <summary>
/// Per-module error metrics of docs/exl3-format.md §6.1 between a test output A and a reference output B, accumulated
/// row by row: rfn_err = ‖a−b‖/‖b‖ averaged over rows; max_diff/norm = max|a−b|/‖b‖, the maximum over rows;
/// SQNR = 10·log10(Σb²/(Σ(a−b)²+1e-8)) and cos_err = 1 − cos(a, b), both per token and averaged over tokens.
/// </summary>
public sealed class ModuleDiff
{
    private double _rfnSum, _maxDiffNorm, _sqnrSum, _cosSum;
    private long _rows, _tokens;

    public long Rows => _rows;
    public double RfnErr => _rows == 0 ? double.NaN : _rfnSum / _rows;
    public double MaxDiffNorm => _rows == 0 ? double.NaN : _maxDiffNorm;
    public double Sqnr => _tokens == 0 ? double.NaN : _sqnrSum / _tokens;
    public double CosErr => _tokens == 0 ? double.NaN : _cosSum / _tokens;

    /// <summary>Adds one row: <paramref name="a"/> and <paramref name="b"/> are (tokens, width) row-major.</summary>
    /// <remarks>
    /// Each token's sums are made on its own (in parallel for a large row) and then added in token order, so the
    /// result is the serial loop's to the bit. A head's row is 2048 tokens × 128,256 logits: the 8B job's head spent
    /// 31 s of its forward in this loop on one core (session 22).
    /// </remarks>
    public void AddRow(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, int width)
    {
        if (a.Length != b.Length || width <= 0 || a.Length % width != 0)
            throw new ArgumentException("rows must have equal (tokens, width) shapes");
        int tokens = a.Length / width;
        var sums = new TokenSums[tokens];
        if (a.Length >= ParallelValues)
            Parallel.For(0, tokens, t => sums[t] = TokenSums.Of(a.Span.Slice(t * width, width), b.Span.Slice(t * width, width)));
        else
        {
            for (int t = 0; t < tokens; t++)
                sums[t] = TokenSums.Of(a.Span.Slice(t * width, width), b.Span.Slice(t * width, width));
        }
        double diffSq = 0, refSq = 0, maxDiff = 0;
        foreach (var (dd, bb, aa, ab, tokenMax) in sums)
        {
            maxDiff = Math.Max(maxDiff, tokenMax);
            _sqnrSum += 10 * Math.Log10(bb / (dd + 1e-8));
            double denominator = Math.Sqrt(aa) * Math.Sqrt(bb);
            // torch's cosine_similarity clamps the norm product with eps = 1e-8.
            _cosSum += 1 - ab / Math.Max(denominator, 1e-8);
            _tokens++;
            diffSq += dd;
            refSq += bb;
        }
        double norm = Math.Sqrt(refSq);
        _rfnSum += Math.Sqrt(diffSq) / norm;
        _maxDiffNorm = Math.Max(_maxDiffNorm, maxDiff / norm);
        _rows++;
    }

    /// <summary>Values in a row from which its tokens are summed in parallel (a decoder block's 2048 × 4096 row is 8M).</summary>
    private const int ParallelValues = 1 << 20;

    /// <summary>One token's Σ(a−b)², Σb², Σa², Σab and max|a−b|.</summary>
    private readonly record struct TokenSums(double DiffSq, double RefSq, double TestSq, double Dot, double MaxDiff)
    {
        public static TokenSums Of(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        {
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
            return new TokenSums(dd, bb, aa, ab, maxDiff);
        }
    }

    public void Merge(ModuleDiff other)
    {
        _rfnSum += other._rfnSum;
        _maxDiffNorm = Math.Max(_maxDiffNorm, other._maxDiffNorm);
        _sqnrSum += other._sqnrSum;
        _cosSum += other._cosSum;
        _rows += other._rows;
        _tokens += other._tokens;
    }
}
