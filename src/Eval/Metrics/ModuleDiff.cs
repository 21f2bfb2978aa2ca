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
    public void AddRow(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int width)
    {
        if (a.Length != b.Length || width <= 0 || a.Length % width != 0)
            throw new ArgumentException("rows must have equal (tokens, width) shapes");
        double diffSq = 0, refSq = 0, maxDiff = 0;
        for (int t = 0; t < a.Length / width; t++)
        {
            double dd = 0, bb = 0, aa = 0, ab = 0;
            for (int i = t * width; i < (t + 1) * width; i++)
            {
                double x = a[i], y = b[i], d = x - y;
                dd += d * d;
                bb += y * y;
                aa += x * x;
                ab += x * y;
                maxDiff = Math.Max(maxDiff, Math.Abs(d));
            }
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
