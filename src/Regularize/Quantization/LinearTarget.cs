using Converter.Compute;
using Converter.Regularize.ScaleSearch;
using Converter.Trellis.Tiles;

namespace Converter.Regularize.Quantization;

/// <summary>
/// One linear's transposed, padded weight W (k, n) and the regularized target made from it (docs/exl3-format.md
/// §3.3–§3.5), held where LDLQ's block loop will read the target: host arrays (<see cref="HostLinearTarget"/>), or a
/// GPU's memory, where the passes over all k·n values run as kernels and only per-row, per-column and per-tile sums
/// come back (on an H100 the host passes were 0.3–0.5 s of each 8B MLP linear's critical path, the GPU mostly idle
/// meanwhile: session 22's timeline). <see cref="LinearQuantizer"/> runs the same steps on either; every step gives the
/// host's bits (the sums are float64 over floats, whose squares are exact, in the host's order).
/// </summary>
public abstract class LinearTarget : IDisposable
{
    protected LinearTarget(int k, int n)
    {
        K = k;
        N = n;
    }

    /// <summary>Padded input features: W's rows.</summary>
    public int K { get; }

    /// <summary>Padded output features: W's columns.</summary>
    public int N { get; }

    /// <summary>Whether W is in (<see cref="Load"/>, <see cref="TryDriftTarget"/>); every other step needs it.</summary>
    public bool Loaded { get; protected set; }

    /// <summary>W (k, n), the transposed and padded weight, taken over: the host's array, which later takes Q.</summary>
    public abstract void Load(float[] w);

    /// <summary>
    /// W ← the drift target (<c>DriftCorrection</c>) of <paramref name="weight"/> (HF layout, rows × k) made where W is
    /// held, T = weight + weight·Gᵀ transposed and zero-padded, with Σ (T − weight)² and Σ weight² in double; null
    /// where it cannot be made there (the caller then makes T and <see cref="Load"/>s it). By default null: the host
    /// makes it (a GPU holding W makes it in place, where it came down and went up again before: 235 MB each way and a
    /// fresh host array per 8B MLP linear).
    /// </summary>
    public virtual (double MovedSquared, double NormSquared)? TryDriftTarget(ReadOnlySpan<float> weight, IResidentMatrix g, int rows, int k) => null;

    /// <summary>
    /// W ← a projected group's drift target of <paramref name="weight"/> (rows × k) made where W is held: Tᵀ = weightᵀ
    /// plus the member's block of <paramref name="steps"/> (from column <paramref name="offset"/>), zero-padded, with
    /// the sums of <see cref="TryDriftTarget"/>; null where it cannot be made there. By default null: the host makes it
    /// (an 8B down_proj's steps and target each crossed the bus, 235 MB, with the host's transpose and add between).
    /// </summary>
    public virtual (double MovedSquared, double NormSquared)? TryProjectedDriftTarget(ReadOnlySpan<float> weight, IResidentSteps steps, int offset, int rows, int k) => null;

    /// <summary>Σ_r W[r, j]² of every column (<see cref="LinearRegularizer.ColumnSquares"/>).</summary>
    public abstract double[] ColumnSquares();

    /// <summary>W's columns multiplied by <paramref name="factors"/>, then its rows rotated: W ← (W·diag(factors))·Had_n (§3.3).</summary>
    public abstract void ScaleColumnsAndRotateRows(float[] factors);

    /// <summary>Σ_j W[r, j]² of every row (<see cref="LinearRegularizer.RowSquares"/>).</summary>
    public abstract double[] RowSquares();

    /// <summary>The target ← Had_k·(diag(1/su)·W) (§3.4, <see cref="LinearRegularizer.ApplyInputSide"/>); W stays.</summary>
    public abstract void FormTarget(float[] su);

    /// <summary>Every 16×16 tile's mean square of the target (<see cref="ScaleTileSampler.MeanSquares"/>).</summary>
    public abstract double[] TileMeanSquares();

    /// <summary>The target's tiles <paramref name="picks"/>, each row-major, one after another.</summary>
    public abstract float[] Tiles(IReadOnlyList<(int Tk, int Tn)> picks);

    /// <summary>The target as a host array (a device copy comes down), for the steps that run only on the host.</summary>
    public abstract float[] HostTarget();

    /// <summary>W as a host array (a device copy comes down), for the steps that run only on the host (the proxy scale search).</summary>
    public abstract float[] HostWeight();

    /// <summary>
    /// A host array of k·n values that nothing reads any more once LDLQ starts, to take Q: the caller's W array (whose
    /// values a device holds, or which the target no longer needs).
    /// </summary>
    public abstract float[] QuantizedArray();

    /// <summary>
    /// Q brought down from where LDLQ left it (<see cref="HeldLdlqResult.Quantized"/> null) into
    /// <see cref="QuantizedArray"/>, before <see cref="Reconstruction"/> works in its memory; only a target whose block
    /// loop ran where it is held leaves Q there.
    /// </summary>
    public virtual float[] QuantizedOnHost() =>
        throw new InvalidOperationException("this target's LDLQ ran through the host arrays: its result holds Q");

    /// <summary>
    /// The HF weight (out, in) that Q (k, n) reconstructs to, W = diag(suh)·Had_k·Q·Had_n·diag(svh) transposed and
    /// trimmed (docs/exl3-format.md §4.3; <c>LinearReconstruction</c>'s bits), made where LDLQ left Q and kept there;
    /// null where Q is not held (a host target, or LDLQ ran on the host). Q is rotated in place: nothing reads it after.
    /// </summary>
    public virtual IResidentWeight? Reconstruction(float[] suh, float[] svh, int outFeatures, int inFeatures) => null;

    /// <summary>The scale search's tiles of the target (§3.5, <see cref="ScaleTileSampler.Sample"/>), in trellis order.</summary>
    public float[] SampleTiles()
    {
        var picks = ScaleTileSampler.Picks(TileMeanSquares(), K / TileLayout.Side, N / TileLayout.Side);
        return ScaleTileSampler.InPositionOrder(Tiles(picks));
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}
