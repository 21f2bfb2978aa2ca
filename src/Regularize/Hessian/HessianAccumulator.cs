using Converter.Compute;
using Converter.Formats.Numerics;

namespace Converter.Regularize.Hessian;

/// <summary>
/// Accumulates H = Σ xᵀx over every calibration token x (a row of a linear layer's input), docs/exl3-format.md §3.2.
/// One accumulator serves a whole quant group (q/k/v share their input, gate/up theirs). Rows with a non-finite
/// value are dropped, as exllamav3 does, and counted so the caller can report them.
/// </summary>
public sealed class HessianAccumulator : IDisposable
{
    private readonly IGramAccumulator _gram;
    private float[] _kept = [];
    private double[]? _sum;
    private bool _spent;

    /// <param name="algebra">Where XᵀX is computed and summed (the CPU when null).</param>
    public HessianAccumulator(int features, IDenseAlgebra? algebra = null)
    {
        Features = features;
        _gram = (algebra ?? CpuDenseAlgebra.Instance).CreateGramAccumulator(features);
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
        if (x.Length != (long)tokens * k)
            throw new ArgumentException($"expected {tokens}×{k} values, got {x.Length}", nameof(x));
        if (_sum is not null || _spent)
            throw new InvalidOperationException("the Hessian sum was already read");
        if (FiniteCheck.AllFinite(x))
        {
            // The common case: every row is kept, so no compacted copy is needed.
            if (tokens > 0)
                _gram.Add(x, tokens);
            Count += tokens;
            return;
        }
        if (_kept.Length < x.Length)
            _kept = new float[x.Length];
        int kept = 0;
        for (int t = 0; t < tokens; t++)
        {
            var row = x.Slice(t * k, k);
            if (!FiniteCheck.AllFinite(row))
            {
                DroppedRows++;
                continue;
            }
            row.CopyTo(_kept.AsSpan(kept * k, k));
            kept++;
        }
        if (kept == 0)
            return;
        _gram.Add(_kept.AsSpan(0, kept * k), kept);
        Count += kept;
    }

    /// <summary>
    /// Adds <paramref name="tokens"/> rows the caller has checked to be finite through <paramref name="addRows"/>, which
    /// gives them to the Gram sum itself (a GPU adding rows that never leave the device).
    /// </summary>
    public void AddVerified(int tokens, Action<IGramAccumulator> addRows)
    {
        if (_sum is not null || _spent)
            throw new InvalidOperationException("the Hessian sum was already read");
        if (tokens > 0)
            addRows(_gram);
        Count += tokens;
    }

    /// <summary>Σ xᵀx (k×k, row-major); read once, after the last <see cref="Add"/>.</summary>
    public ReadOnlyMemory<double> Sum => _sum ??= _spent ? throw new InvalidOperationException("the Hessian was already finalized") : _gram.Sum();

    /// <summary>
    /// Σ xᵀx / <see cref="Count"/> padded to <paramref name="paddedK"/> (<see cref="IGramAccumulator.Mean"/>), once, after
    /// the last <see cref="Add"/>; the sum's memory (on a GPU, 12 bytes per k² entry) is released by it.
    /// </summary>
    public GramMean Mean(int paddedK)
    {
        if (_spent)
            throw new InvalidOperationException("the Hessian was already finalized");
        _spent = true;
        _sum = null;
        var mean = _gram.Mean(Count, paddedK);
        _gram.Dispose();
        return mean;
    }

    /// <summary>
    /// <see cref="Mean"/> left on the device that holds the sum (<see cref="IGramAccumulator.MeanInPlace"/>); null, and
    /// nothing spent, where the sum is on the host.
    /// </summary>
    public ResidentGramMean? MeanInPlace(int paddedK)
    {
        if (_spent)
            throw new InvalidOperationException("the Hessian was already finalized");
        var mean = _gram.MeanInPlace(Count, paddedK);
        if (mean is null)
            return null;
        _spent = true;
        _sum = null;
        _gram.Dispose();
        return mean;
    }

    public void Dispose() => _gram.Dispose();
}
