using Converter.Compute;
using Converter.Regularize.Hadamard;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Tiles;

namespace Converter.Regularize.Quantization;

/// <summary><see cref="LinearTarget"/> as host arrays: W, regularized in place, and the target beside it.</summary>
public sealed class HostLinearTarget : LinearTarget
{
    private float[]? _w;
    private float[]? _target;

    /// <summary>Holds nothing yet: W comes by <see cref="Load"/>.</summary>
    public HostLinearTarget(int k, int n) : base(k, n)
    {
    }

    /// <param name="w">W (k, n), taken over: regularized in place, then given to Q (<see cref="QuantizedArray"/>).</param>
    public HostLinearTarget(float[] w, int k, int n) : base(k, n) => Load(w);

    private float[] W => _w ?? throw new InvalidOperationException("W is loaded first");

    public override void Load(float[] w)
    {
        if (w.Length != (long)K * N)
            throw new ArgumentException($"the transposed weight has {w.Length} values, not {K}×{N}", nameof(w));
        _w = w;
        Loaded = true;
    }

    private float[] Target => _target ?? throw new InvalidOperationException("the target is formed by FormTarget first");

    public override double[] ColumnSquares() => LinearRegularizer.ColumnSquares(W, K, N);

    public override void ScaleColumnsAndRotateRows(float[] factors)
    {
        LinearRegularizer.ScaleColumns(W, K, N, factors);
        HadamardTransform.RightMultiply(W, K, N);
    }

    public override double[] RowSquares() => LinearRegularizer.RowSquares(W, K, N);

    public override void FormTarget(float[] su)
    {
        _target ??= new float[ArrayLength.Of(K, N, "regularized weight")];
        LinearRegularizer.ApplyInputSide(W, _target, K, N, su);
    }

    public override double[] TileMeanSquares() => ScaleTileSampler.MeanSquares(Target, K, N);

    public override float[] Tiles(IReadOnlyList<(int Tk, int Tn)> picks)
    {
        var tiles = new float[picks.Count * TileLayout.Length];
        for (int p = 0; p < picks.Count; p++)
            ScaleTileSampler.CopyTile(Target, N, picks[p].Tk, picks[p].Tn, tiles.AsSpan(p * TileLayout.Length, TileLayout.Length));
        return tiles;
    }

    public override float[] HostTarget() => Target;

    public override float[] HostWeight() => W;

    public override float[] QuantizedArray() => W;

    /// <summary>
    /// Lets go of the arrays: a caller's reference to this object must not keep the target alive (a head's is 2.1 GB
    /// at an 8B, which stayed reachable through the reconstruction and raised the host peak by as much, session 26).
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        _w = null;
        _target = null;
        Loaded = false;
    }
}
