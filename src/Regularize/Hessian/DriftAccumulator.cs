using System.Numerics.Tensors;
using Converter.Compute;
using Converter.Formats.Numerics;

namespace Converter.Regularize.Hessian;

/// <summary>
/// Accumulates C = Σ x̃ᵀ(x − x̃) over calibration tokens, where x̃ is a linear group's input in the quantized model's
/// stream (the rows its Hessian X̃ᵀX̃ is summed from) and x the same token's input in the original model's stream: the
/// cross term of ‖X̃Ŵᵀ − XWᵀ‖² that moves the drift-aware target away from W (<see cref="Quantization.DriftCorrection"/>).
/// With a <paramref name="projection"/> it sums C·Wᵀ = Σ x̃ᵀ·((x − x̃)·Wᵀ) (k × Σ out) instead, all the target needs
/// (<see cref="Projects"/> says when that is the smaller). A token with a non-finite value in either stream is skipped,
/// as the Hessian sum skips it. The sum lives where <paramref name="algebra"/> keeps it
/// (<see cref="IDenseAlgebra.CreateCrossAccumulator(int, int)"/>: a GPU's memory, so no product comes back per chunk).
/// </summary>
public sealed class DriftAccumulator(int features, IDenseAlgebra? algebra = null, CrossProjection? projection = null) : IDisposable
{
    private readonly IDenseAlgebra _algebra = algebra ?? CpuDenseAlgebra.Instance;
    private ICrossAccumulator? _cross;
    private float[] _quantized = [], _difference = [], _projected = [], _part = [];
    private bool _spent;

    /// <summary>
    /// Whether a group of <paramref name="features"/> inputs and <paramref name="outputs"/> outputs in all sums its
    /// cross term projected by its weights: where its outputs are fewer than its inputs, so that the k × Σ out sum is
    /// the smaller (a 70B down_proj's 28672 × 8192 in float64 is 1.9 GB beside the square sum's 6.6 GB), its solve has
    /// that many right-hand sides, and a chunk's two products of out × k × tokens cost less than one of k² × tokens.
    /// </summary>
    public static bool Projects(int features, long outputs) => outputs < features;

    /// <summary>Input width k (unpadded).</summary>
    public int Features { get; } = features;

    /// <summary>The weights the sum is projected by, or null for the square sum.</summary>
    public CrossProjection? Projection { get; } = projection is null || projection.Features == features ? projection
        : throw new ArgumentException($"a projection of {projection.Features} inputs cannot serve a sum of {features}", nameof(projection));

    /// <summary>The sum's columns: k, or the projection's Σ out.</summary>
    public int Columns => Projection?.Columns ?? Features;

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
        _cross ??= _algebra.CreateCrossAccumulator(k, Columns);
        if (Projection is null)
        {
            _cross.Add(_quantized.AsSpan(0, kept * k), _difference.AsSpan(0, kept * k), kept);
            return;
        }
        int columns = Columns;
        if (_projected.Length < (long)kept * columns)
        {
            _projected = new float[ArrayLength.Of(tokens, columns, "projected drift")];
            _part = Projection.Weights.Count == 1 ? [] : new float[_projected.Length];
        }
        Projection.Project(_algebra, _difference.AsSpan(0, kept * k), kept, _projected, _part);
        _cross.Add(_quantized.AsSpan(0, kept * k), _projected.AsSpan(0, kept * columns), kept);
    }

    /// <summary>
    /// Adds <paramref name="tokens"/> rows a device holds: <paramref name="add"/> adds their X̃ᵀ(X − X̃) to the sum on
    /// that device and says whether any X differed from its X̃, or returns null when the sum is not on its device;
    /// false then, nothing added. The rows must all be finite (the caller checked: a non-finite one comes as a host copy).
    /// </summary>
    public bool AddOnDevice(int tokens, Func<ICrossAccumulator, bool?> add)
    {
        ThrowIfSpent();
        _cross ??= _algebra.CreateCrossAccumulator(Features, Columns);
        if (add(_cross) is not { } differed)
            return false;
        Count += tokens;
        AnyDrift |= differed;
        return true;
    }

    /// <summary>
    /// The sum / <see cref="Count"/> (k × <see cref="Columns"/>, row-major: C[i, j] = mean of x̃_i·(x_j − x̃_j), or
    /// projected, mean of x̃_i·((x − x̃)·Wᵀ)_j); zeros before any token.
    /// </summary>
    public double[] Mean()
    {
        ThrowIfSpent();
        if (_cross is null || Count == 0)
            return new double[ArrayLength.Of(Features, Columns, "drift cross sum")];
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
        if (Projection is not null)
            throw new InvalidOperationException("a projected cross sum solves to its members' steps (SolveProjected), not to G");
        return Spend(cross => algebra.TrySolveCrossKept(cross, resident, hostHessian, Features, paddedK, strength / Count));
    }

    /// <summary>
    /// The projected sum's solve, strength·A⁻¹·C·Wᵀ/<see cref="Count"/> (k × <see cref="Columns"/>: each member's block
    /// of columns is its (W·Gᵀ)ᵀ), as <see cref="Solve"/> spends the square sum, kept where it was solved
    /// (<see cref="IDenseAlgebra.TrySolveCrossStepsKept"/>); null when A is not positive definite.
    /// </summary>
    public IResidentSteps? SolveProjected(IDenseAlgebra algebra, IResidentMatrix? resident, Func<float[]> hostHessian, int paddedK, double strength)
    {
        if (Projection is null)
            throw new InvalidOperationException("a square cross sum solves to G (Solve)");
        return Spend(cross => algebra.TrySolveCrossStepsKept(cross, resident, hostHessian, Features, paddedK, strength / Count));
    }

    private T? Spend<T>(Func<ICrossAccumulator, T?> solve) where T : class
    {
        ThrowIfSpent();
        if (_cross is null || Count == 0)
            throw new InvalidOperationException("no drift to solve for: the cross sum has no tokens that differed");
        var solved = solve(_cross);
        _cross.Dispose();
        _cross = null;
        _spent = true;
        return solved;
    }

    private void ThrowIfSpent()
    {
        if (_spent)
            throw new InvalidOperationException("the drift cross sum was spent by its solve");
    }

    /// <summary>Frees the sum (on a GPU, k × <see cref="Columns"/> float64).</summary>
    public void Dispose()
    {
        _cross?.Dispose();
        _cross = null;
    }
}
