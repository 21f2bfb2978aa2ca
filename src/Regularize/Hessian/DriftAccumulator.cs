using Converter.Compute;
using Converter.Formats.Numerics;

namespace Converter.Regularize.Hessian;

/// <summary>
/// Accumulates C = Σ x̃ᵀ(x − x̃) over calibration tokens, where x̃ is a linear group's input in the quantized model's
/// stream (the rows its Hessian X̃ᵀX̃ is summed from) and x the same token's input in the original model's stream: the
/// cross term of ‖X̃Ŵᵀ − XWᵀ‖² that moves the drift-aware target away from W (<see cref="Quantization.DriftCorrection"/>).
/// A token with a non-finite value in either stream is skipped, as the Hessian sum skips it.
/// </summary>
public sealed class DriftAccumulator(int features, IDenseAlgebra? algebra = null)
{
    private readonly IDenseAlgebra _algebra = algebra ?? CpuDenseAlgebra.Instance;
    private readonly double[] _sum = new double[ArrayLength.Of(features, features, "drift cross sum")];
    private float[] _quantizedT = [], _differenceT = [], _product = [];

    /// <summary>Input width k (unpadded).</summary>
    public int Features { get; } = features;

    /// <summary>Tokens summed.</summary>
    public long Count { get; private set; }

    /// <summary>Whether any summed token's two inputs differed: where none did (the first decoder layer), C is zero and the target is W.</summary>
    public bool AnyDrift { get; private set; }

    /// <summary>Adds the tokens of X̃ and X (tokens × k each, row-major, row t of both the same token).</summary>
    public void Add(ReadOnlySpan<float> quantized, ReadOnlySpan<float> original, int tokens)
    {
        int k = Features;
        if (quantized.Length != (long)tokens * k || original.Length != quantized.Length)
            throw new ArgumentException($"expected two {tokens}×{k} inputs, got {quantized.Length} and {original.Length} values");
        if (_quantizedT.Length < quantized.Length)
        {
            _quantizedT = new float[quantized.Length];
            _differenceT = new float[quantized.Length];
        }
        // X̃ᵀ and (X − X̃)ᵀ (k × kept tokens): the GEMM computes a·bᵀ, so X̃ᵀ·((X − X̃)ᵀ)ᵀ = X̃ᵀ(X − X̃).
        int kept = 0;
        for (int t = 0; t < tokens; t++)
        {
            var q = quantized.Slice(t * k, k);
            var o = original.Slice(t * k, k);
            if (!FiniteCheck.AllFinite(q) || !FiniteCheck.AllFinite(o))
                continue;
            for (int i = 0; i < k; i++)
            {
                float d = o[i] - q[i];
                AnyDrift |= d != 0;
                _quantizedT[i * tokens + kept] = q[i];
                _differenceT[i * tokens + kept] = d;
            }
            kept++;
        }
        Count += kept;
        if (kept == 0 || !AnyDrift)
            return;
        if (kept < tokens)
        {
            // Skipped tokens leave gaps at the end of each row: close them so the product reads (k, kept).
            for (int i = 1; i < k; i++)
            {
                _quantizedT.AsSpan(i * tokens, kept).CopyTo(_quantizedT.AsSpan(i * kept));
                _differenceT.AsSpan(i * tokens, kept).CopyTo(_differenceT.AsSpan(i * kept));
            }
        }
        if (_product.Length == 0)
            _product = new float[_sum.Length];
        _algebra.MultiplyTransposed(_quantizedT.AsSpan(0, k * kept), _differenceT.AsSpan(0, k * kept), _product, k, k, kept);
        // Chunks are summed in double, as the Hessian's, so long runs keep the small late contributions.
        for (int i = 0; i < _product.Length; i++)
            _sum[i] += _product[i];
    }

    /// <summary>C / <see cref="Count"/> (k×k, row-major, C[i, j] = mean of x̃_i·(x_j − x̃_j)); zeros before any token.</summary>
    public double[] Mean()
    {
        var mean = new double[_sum.Length];
        if (Count > 0)
        {
            for (int i = 0; i < mean.Length; i++)
                mean[i] = _sum[i] / Count;
        }
        return mean;
    }
}
