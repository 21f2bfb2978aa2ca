using Converter.Compute;
using Converter.Regularize.Hadamard;

namespace Converter.Regularize.Hessian;

/// <summary>
/// A quant group's finalized Hessian (docs/exl3-format.md §3.2 finalize): H/count with σ·mean(diag) damping, padded to a
/// multiple of 128, plus the random input sign flips every tensor of the group shares. <see cref="FallbackReason"/>
/// is set when the Hessian is unusable (no rows, non-finite, or vanishing) and the group quantizes without feedback.
/// </summary>
public sealed class GroupHessian
{
    /// <summary>Damping σ (§3.2, exllamav3's sigma_reg default).</summary>
    public const double DefaultSigma = 0.025;

    /// <summary>Below this mean diagonal the Hessian carries no information (§3.2 step 3).</summary>
    private const double MinDiagMean = 1e-20;

    private GroupHessian(int paddedK, float[]? damped, double diagMean, float[] inputSigns, long count, string? fallbackReason)
    {
        PaddedK = paddedK;
        Damped = damped;
        DiagMean = diagMean;
        InputSigns = inputSigns;
        Count = count;
        FallbackReason = fallbackReason;
    }

    public int PaddedK { get; }

    /// <summary>Damped H in the original input basis (PaddedK², row-major); null in fallback.</summary>
    public float[]? Damped { get; }

    public double DiagMean { get; }

    /// <summary>su_sign: ±1 per input channel, shared by the group (§3.2 step 6).</summary>
    public float[] InputSigns { get; }

    public long Count { get; }

    public string? FallbackReason { get; }

    /// <summary>Finalizes an accumulated sum. <paramref name="rng"/> draws the input signs.</summary>
    public static GroupHessian Finalize(HessianAccumulator accumulator, int paddedK, double sigma, Random rng)
    {
        var signs = RandomSigns(paddedK, rng);
        if (accumulator.Count == 0)
            return new GroupHessian(paddedK, null, 0, signs, 0, "no calibration rows reached this layer");
        var mean = accumulator.Mean(paddedK);
        var h = mean.Values;
        double diagSum = 0;
        foreach (double d in mean.Diagonal)
            diagSum += d;
        // Padded input channels are always zero: their mean is over the padded width as in exllamav3, where the
        // inputs are zero-extended before accumulation.
        double diagMean = diagSum / paddedK;
        if (!double.IsFinite(diagMean) || !Formats.Numerics.FiniteCheck.AllFinite(h))
            return new GroupHessian(paddedK, null, diagMean, signs, accumulator.Count, "Hessian has non-finite values");
        if (diagMean < MinDiagMean)
            return new GroupHessian(paddedK, null, diagMean, signs, accumulator.Count, $"Hessian mean diagonal {diagMean:E2} is vanishing");
        for (int i = 0; i < paddedK; i++)
            h[i * paddedK + i] += (float)(sigma * diagMean);
        return new GroupHessian(paddedK, h, diagMean, signs, accumulator.Count, null);
    }

    /// <summary>
    /// H in the basis the quantizer codes (§3.4): Had·diag(s)·H·diag(s)·Had. With s = the sign flips this is
    /// exllamav3's rotation; with s = su (signs × input scales) it is the exact Hessian of the scaled basis.
    /// </summary>
    public float[] InQuantizedBasis(ReadOnlySpan<float> inputScale)
    {
        if (Damped is null)
            throw new InvalidOperationException("no Hessian in fallback mode");
        int k = PaddedK;
        var h = (float[])Damped.Clone();
        var scale = inputScale.ToArray();
        Parallel.For(0, k, i =>
        {
            var row = h.AsSpan(i * k, k);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale, row);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale[i], row);
        });
        HadamardTransform.LeftMultiply(h, k, k);
        HadamardTransform.RightMultiply(h, k, k);
        return h;
    }

    /// <summary>Diagonal of the damped Hessian (for the out-scales heuristic of §3.3).</summary>
    public float[] Diagonal()
    {
        var d = new float[PaddedK];
        if (Damped is not null)
        {
            for (int i = 0; i < PaddedK; i++)
                d[i] = Damped[i * PaddedK + i];
        }
        return d;
    }

    public static float[] RandomSigns(int count, Random rng)
    {
        var signs = new float[count];
        for (int i = 0; i < count; i++)
            signs[i] = rng.Next(2) == 0 ? 1f : -1f;
        return signs;
    }
}
