using Converter.Compute;
using Converter.Regularize.Hadamard;

namespace Converter.Regularize.Quantization;

/// <summary>
/// Output scales and sign flips, right Hadamard, input scales (docs/exl3-format.md §3.3–§3.4). Works on W (k, n) =
/// the transposed, padded HF weight. Scales are rounded to fp16 before use, so that what is quantized is exactly
/// what the stored suh/svh reconstruct (exllamav3 quantizes with fp32 scales and stores fp16 ones, §3.8 caveat).
/// </summary>
public static class LinearRegularizer
{
    /// <summary>Below this a channel's RMS counts as zero (§3.3 step 5, §3.4 step 1).</summary>
    private const double ZeroRms = 1e-30;

    /// <summary>Stand-in scale for all-zero channels (§3.3 step 6, §3.4 step 1).</summary>
    private const float ZeroChannelScale = 0.1f;

    /// <summary>The 1e-10 exllamav3 adds so no scale is exactly zero before division.</summary>
    private const float Epsilon = 1e-10f;

    /// <summary>Skew threshold of the out-scales heuristic (§3.3 step 2).</summary>
    private const double SkewThreshold = 0.15;

    /// <summary>Decides §3.3's apply_out_scales. <paramref name="hessianDiagonal"/> is empty when there is no Hessian.</summary>
    public static bool ApplyOutScales(OutScalesMode mode, ReadOnlySpan<float> hessianDiagonal)
    {
        if (mode != OutScalesMode.Auto)
            return mode == OutScalesMode.Always;
        if (hessianDiagonal.IsEmpty)
            return true;
        var d = hessianDiagonal.ToArray().Select(v => Math.Sqrt(Math.Max(v, 0))).OrderByDescending(v => v).ToArray();
        int cutoff = d.Length / 50;
        double total = d.Sum();
        double skew = total > 0 ? d.Take(cutoff).Sum() / total : 0;
        return skew < SkewThreshold;
    }

    /// <summary>
    /// Σ_r W[r, j]² of every column in float64, each summed over the rows in order (so the result does not depend on
    /// threads, and a device that sums in the same order gets the same bits: a float's square is exact in float64).
    /// </summary>
    public static unsafe double[] ColumnSquares(ReadOnlySpan<float> w, int k, int n)
    {
        var squares = new double[n];
        fixed (float* p = w)
        {
            nint address = (nint)p;
            Parallel.For(0, (n + 255) / 256, stripe =>
            {
                int j0 = stripe * 256, j1 = Math.Min(n, j0 + 256);
                for (int r = 0; r < k; r++)
                {
                    float* row = (float*)address + (long)r * n;
                    for (int j = j0; j < j1; j++)
                        squares[j] += (double)row[j] * row[j];
                }
            });
        }
        return squares;
    }

    /// <summary>
    /// §3.3 steps 2–6 from the columns' sums of squares (<see cref="ColumnSquares"/>, k rows): sv (fp16-exact, 0 for an
    /// all-zero column) and the factors W's columns are multiplied by (1/sv before the zeroing).
    /// </summary>
    public static (float[] Sv, float[] Inverse) OutputScales(ReadOnlySpan<double> columnSquares, int k, ReadOnlySpan<float> outputSigns, bool applyOutScales)
    {
        int n = columnSquares.Length;
        var ocs = new double[n];
        for (int j = 0; j < n; j++)
            ocs[j] = Math.Sqrt(columnSquares[j] / k);
        double mean = ocs.Average();
        if (mean > ZeroRms)
        {
            for (int j = 0; j < n; j++)
                ocs[j] /= mean;
        }
        else
        {
            applyOutScales = true;
        }
        var sv = new float[n];
        var zero = new bool[n];
        for (int j = 0; j < n; j++)
        {
            zero[j] = Math.Abs(ocs[j]) < ZeroRms;
            float scale = applyOutScales ? (zero[j] ? ZeroChannelScale : (float)ocs[j]) : 1f;
            sv[j] = RoundToHalf(outputSigns[j] * scale + Epsilon);
        }
        var inverse = sv.Select(v => 1f / v).ToArray();
        for (int j = 0; j < n; j++)
        {
            if (zero[j])
                sv[j] = 0;
        }
        return (sv, inverse);
    }

    /// <summary>W[r, j] ·= factors[j] for every row.</summary>
    public static void ScaleColumns(Span<float> w, int k, int n, float[] factors) =>
        RowParallel.ForEach(w, k, n, (row, _) => System.Numerics.Tensors.TensorPrimitives.Multiply(row, factors, row));

    /// <summary>
    /// §3.4 step 1–2: su = sign·rowRMS/(−codebookScale) + 1e-10 for W after the right rotation. The negative divisor
    /// is exllamav3's; reconstruction uses the same su, so the sign is harmless.
    /// </summary>
    public static float[] InputScales(ReadOnlySpan<float> w, int k, int n, ReadOnlySpan<float> inputSigns, double codebookScale) =>
        InputScales(RowSquares(w, k, n), n, inputSigns, codebookScale);

    /// <summary>Σ_j W[r, j]² of every row in float64, summed along the row in order (see <see cref="ColumnSquares"/>).</summary>
    public static unsafe double[] RowSquares(ReadOnlySpan<float> w, int k, int n)
    {
        var squares = new double[k];
        fixed (float* p = w)
        {
            nint address = (nint)p;
            Parallel.For(0, k, r =>
            {
                double ss = 0;
                foreach (var v in new ReadOnlySpan<float>((float*)address + (long)r * n, n))
                    ss += (double)v * v;
                squares[r] = ss;
            });
        }
        return squares;
    }

    /// <summary>§3.4 step 1–2 from the rows' sums of squares (<see cref="RowSquares"/>, n columns).</summary>
    public static float[] InputScales(ReadOnlySpan<double> rowSquares, int n, ReadOnlySpan<float> inputSigns, double codebookScale)
    {
        var su = new float[rowSquares.Length];
        for (int r = 0; r < su.Length; r++)
        {
            double ics = Math.Sqrt(rowSquares[r] / n);
            if (Math.Abs(ics) < ZeroRms)
                ics = ZeroChannelScale;
            su[r] = (float)(inputSigns[r] * ics / -codebookScale) + Epsilon;
        }
        return su;
    }

    /// <summary>§3.4 steps 3–4 into <paramref name="target"/>: rows of W divided by su, then Had_k on the left.</summary>
    public static unsafe void ApplyInputSide(ReadOnlySpan<float> w, Span<float> target, int k, int n, ReadOnlySpan<float> su)
    {
        var scales = su.ToArray();
        fixed (float* p = w)
        {
            nint source = (nint)p;
            RowParallel.ForEach(target, k, n, (row, r) =>
                System.Numerics.Tensors.TensorPrimitives.Divide(new ReadOnlySpan<float>((float*)source + (long)r * n, n), scales[r], row));
        }
        HadamardTransform.LeftMultiply(target, k, n);
    }

    /// <summary>The value fp16 storage will hold (round to nearest even).</summary>
    public static float RoundToHalf(float v) => (float)(Half)v;
}
