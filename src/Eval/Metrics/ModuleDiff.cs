using Converter.Compute;

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
    public void AddRow(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, int width) => AddRow(TokenDiff.OfRows(a, b, width));

    /// <summary>Adds one row from its tokens' sums, in token order (made where the row is: <see cref="TokenDiff"/>).</summary>
    public void AddRow(ReadOnlySpan<TokenDiff> tokens)
    {
        if (tokens.IsEmpty)
            throw new ArgumentException("a row has at least one token", nameof(tokens));
        double diffSq = 0, refSq = 0, maxDiff = 0;
        foreach (var (dd, bb, aa, ab, tokenMax) in tokens)
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
