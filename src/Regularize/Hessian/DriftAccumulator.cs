using System.Numerics.Tensors;
using Converter.Compute;
using Converter.Formats.Numerics;

namespace Converter.Regularize.Hessian;

/// <summary>
/// Accumulates C = Σ x̃ᵀ(x − x̃) over calibration tokens, where x̃ is a linear group's input in the quantized model's
/// stream (the rows its Hessian X̃ᵀX̃ is summed from) and x the same token's input in the original model's stream: the
/// cross term of ‖X̃Ŵᵀ − XWᵀ‖² that moves the drift-aware target away from W (<see cref="Quantization.DriftCorrection"/>).
/// A token with a non-finite value in either stream is skipped, as the Hessian sum skips it. The sum lives where
/// <paramref name="algebra"/> keeps it (<see cref="IDenseAlgebra.CreateCrossAccumulator"/>: a GPU's memory, so no
/// k² product comes back per chunk).
/// </summary>
public sealed class DriftAccumulator(int features, IDenseAlgebra? algebra = null) : IDisposable
{
    private readonly IDenseAlgebra _algebra = algebra ?? CpuDenseAlgebra.Instance;
    private ICrossAccumulator? _cross;
    private float[] _quantized = [], _difference = [];
    private bool _spent;

    /// <summary>Input width k (unpadded).</summary>
    public int Features { get; } = features;

    /// <summary>Tokens summed.</summary>
    public long Count { get; private set; }

    /// <summary>Whether any summed token's two inputs differed: where none did (the first decoder layer), C is zero and the target is W.</summary>
    public bool AnyDrift { get; private set; }

    /// <summary>Adds the tokens of X̃ and X (tokens × k each, row-major, row t of both the same token).</summary>
    public void Add(ReadOnlySpan<float> quantized, ReadOnlySpan<float> original, int tokens)
    {
        ThrowIfSpent();
        int k = Features;
        if (quantized.Length != (long)tokens * k || original.Length != quantized.Length)
            throw new ArgumentException($"expected two {tokens}×{k} inputs, got {quantized.Length} and {original.Length} values");
        if (_quantized.Length < quantized.Length)
        {
            _quantized = new float[quantized.Length];
            _difference = new float[quantized.Length];
        }
        // The kept tokens' X̃ and X − X̃, rows packed in order.
        int kept = 0;
        for (int t = 0; t < tokens; t++)
        {
            var q = quantized.Slice(t * k, k);
            var o = original.Slice(t * k, k);
            if (!FiniteCheck.AllFinite(q) || !FiniteCheck.AllFinite(o))
                continue;
            var d = _difference.AsSpan(kept * k, k);
            TensorPrimitives.Subtract(o, q, d);
            AnyDrift |= TensorPrimitives.MaxMagnitude(d) != 0;
            q.CopyTo(_quantized.AsSpan(kept * k, k));
            kept++;
        }
        Count += kept;
        if (kept == 0 || !AnyDrift)
            return;
        _cross ??= _algebra.CreateCrossAccumulator(k);
        _cross.Add(_quantized.AsSpan(0, kept * k), _difference.AsSpan(0, kept * k), kept);
    }

    /// <summary>
    /// Adds <paramref name="tokens"/> rows a device holds: <paramref name="add"/> adds their X̃ᵀ(X − X̃) to the sum on
    /// that device and says whether any X differed from its X̃, or returns null when the sum is not on its device;
    /// false then, nothing added. The rows must all be finite (the caller checked: a non-finite one comes as a host copy).
    /// </summary>
    public bool AddOnDevice(int tokens, Func<ICrossAccumulator, bool?> add)
    {
        ThrowIfSpent();
        _cross ??= _algebra.CreateCrossAccumulator(Features);
        if (add(_cross) is not { } differed)
            return false;
        Count += tokens;
        AnyDrift |= differed;
        return true;
    }

    /// <summary>C / <see cref="Count"/> (k×k, row-major, C[i, j] = mean of x̃_i·(x_j − x̃_j)); zeros before any token.</summary>
    public double[] Mean()
    {
        ThrowIfSpent();
        if (_cross is null || Count == 0)
            return new double[ArrayLength.Of(Features, Features, "drift cross sum")];
        var mean = _cross.Sum();
        for (int i = 0; i < mean.Length; i++)
            mean[i] /= Count;
        return mean;
    }

    /// <summary>
    /// strength·A⁻¹·C/<see cref="Count"/> on <paramref name="algebra"/> (<see cref="IDenseAlgebra.TrySolveCross"/>) for A
    /// the top-left of a damped Hessian, resident or on the host; null when A is not positive definite. The sum is spent:
    /// no token may be added, nor <see cref="Mean"/> asked, after it. G is kept where it was solved
    /// (<see cref="IDenseAlgebra.TrySolveCrossKept"/>: a GPU's memory).
    /// </summary>
    public IResidentMatrix? Solve(IDenseAlgebra algebra, IResidentMatrix? resident, Func<float[]> hostHessian, int paddedK, double strength)
    {
        ThrowIfSpent();
        if (_cross is null || Count == 0)
            throw new InvalidOperationException("no drift to solve for: the cross sum has no tokens that differed");
        var g = algebra.TrySolveCrossKept(_cross, resident, hostHessian, Features, paddedK, strength / Count);
        _cross.Dispose();
        _cross = null;
        _spent = true;
        return g;
    }

    private void ThrowIfSpent()
    {
        if (_spent)
            throw new InvalidOperationException("the drift cross sum was spent by its solve");
    }

    /// <summary>Frees the sum (on a GPU, k×k float64).</summary>
    public void Dispose()
    {
        _cross?.Dispose();
        _cross = null;
    }
}
