using Converter.Compute;
using Converter.Regularize.Hadamard;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Tiles;

namespace Converter.Regularize.Quantization;

/// <summary><see cref="LinearTarget"/> as host arrays: W, regularized in place, and the target beside it.</summary>
public sealed class HostLinearTarget : LinearTarget
{
    private readonly float[] _w;
    private float[]? _target;

    /// <param name="w">W (k, n), taken over: regularized in place, then given to Q (<see cref="QuantizedArray"/>).</param>
    public HostLinearTarget(float[] w, int k, int n) : base(k, n)
    {
        if (w.Length != (long)k * n)
            throw new ArgumentException($"the transposed weight has {w.Length} values, not {k}×{n}", nameof(w));
        _w = w;
    }

    private float[] Target => _target ?? throw new InvalidOperationException("the target is formed by FormTarget first");

    public override double[] ColumnSquares() => LinearRegularizer.ColumnSquares(_w, K, N);

    public override void ScaleColumnsAndRotateRows(float[] factors)
    {
        LinearRegularizer.ScaleColumns(_w, K, N, factors);
        HadamardTransform.RightMultiply(_w, K, N);
    }

    public override double[] RowSquares() => LinearRegularizer.RowSquares(_w, K, N);

    public override void FormTarget(float[] su)
    {
        _target ??= new float[ArrayLength.Of(K, N, "regularized weight")];
        LinearRegularizer.ApplyInputSide(_w, _target, K, N, su);
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

    public override float[] HostWeight() => _w;

    public override float[] QuantizedArray() => _w;
}
