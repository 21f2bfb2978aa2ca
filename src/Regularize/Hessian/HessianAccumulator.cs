using Converter.Compute;
using Converter.Formats.Numerics;

namespace Converter.Regularize.Hessian;

/// <summary>
/// Accumulates H = Σ xᵀx over every calibration token x (a row of a linear layer's input), EXL3-FORMAT.md §3.2.
/// One accumulator serves a whole quant group (q/k/v share their input, gate/up theirs). Rows with a non-finite
/// value are dropped, as exllamav3 does, and counted so the caller can report them.
/// </summary>
public sealed class HessianAccumulator
{
    private readonly double[] _sum;
    private float[] _transposed = [];
    private float[] _product = [];

    public HessianAccumulator(int features)
    {
        Features = features;
        _sum = new double[(long)features * features <= Array.MaxLength ? features * features : throw new ArgumentException("Hessian too large")];
    }

    /// <summary>Input width k (unpadded).</summary>
    public int Features { get; }

    /// <summary>Token rows accumulated.</summary>
    public long Count { get; private set; }

    /// <summary>Token rows skipped because they held NaN or ±Inf.</summary>
    public long DroppedRows { get; private set; }

    /// <summary>Adds the rows of X (tokens × k, row-major).</summary>
    public void Add(ReadOnlySpan<float> x, int tokens)
    {
        int k = Features;
        if (x.Length != tokens * k)
            throw new ArgumentException($"expected {tokens}×{k} values, got {x.Length}", nameof(x));
        if (_transposed.Length < tokens * k)
            _transposed = new float[tokens * k];
        // Xᵀ (k × tokens), finite rows only, packed to the left: the GEMM computes a·bᵀ, so Xᵀ·(Xᵀ)ᵀ = XᵀX.
        // Column stride is the full token count; the GEMM below reads the first `kept` columns of each row
        // after the rows are compacted.
        int kept = 0;
        for (int t = 0; t < tokens; t++)
        {
            var row = x.Slice(t * k, k);
            if (!FiniteCheck.AllFinite(row))
            {
                DroppedRows++;
                continue;
            }
            for (int i = 0; i < k; i++)
                _transposed[i * tokens + kept] = row[i];
            kept++;
        }
        if (kept == 0)
            return;
        if (kept < tokens)
        {
            for (int i = 1; i < k; i++)
                _transposed.AsSpan(i * tokens, kept).CopyTo(_transposed.AsSpan(i * kept, kept));
        }
        if (_product.Length != k * k)
            _product = new float[k * k];
        MatMul.MultiplyTransposed(_transposed.AsSpan(0, k * kept), _transposed.AsSpan(0, k * kept), _product, k, k, kept);
        // Sum batches in double so long calibration runs do not lose the small late contributions.
        for (int i = 0; i < _product.Length; i++)
            _sum[i] += _product[i];
        Count += kept;
    }

    /// <summary>Σ xᵀx so far (k×k, row-major).</summary>
    public ReadOnlySpan<double> Sum => _sum;
}
