using Converter.Compute;
using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;
using Converter.Trellis.Viterbi;

namespace Converter.Regularize.Quantization;

/// <summary>
/// Runs LDLQ (docs/exl3-format.md §3.6–§3.7) for one linear: the block LDL of its Hessian and the block loop, on the host
/// (<see cref="HostLdlqSolver"/>) or wholly on a device. Every implementation has the semantics of
/// <see cref="BlockLdl.Decompose"/> and <see cref="Ldlq.Quantize"/>.
/// </summary>
public interface ILdlqSolver
{
    /// <summary>Where the block loop runs: "host", or the device ("cuda:0").</summary>
    string Device { get; }

    /// <summary>The strict block-lower factor L_u of the Hessian <paramref name="hessian"/> (k×k, in the quantized basis), as <see cref="BlockLdl.Decompose"/>.</summary>
    /// <param name="algebra">Where the Cholesky runs when the factor is formed on the host.</param>
    BlockLdlResult Factor(float[] hessian, int k, double sigma, IDenseAlgebra algebra);

    /// <param name="wr">Regularized target (k, n), row-major.</param>
    /// <param name="factor">L_u (k×k, row-major), or null to quantize without feedback (fallback).</param>
    /// <param name="encoder">The tile search for this tensor's K and codebook.</param>
    /// <param name="quantizedInto">
    /// A k·n array the caller no longer needs, to hold Q (every value is overwritten; the result's Quantized is this
    /// array); null allocates one. LinearQuantizer passes its transposed weight: at a 128k-vocabulary head that is a
    /// 2–4 GB array fewer alive at once.
    /// </param>
    LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, float[]? factor, ITileEncoder encoder, float[]? quantizedInto = null);

    /// <summary>
    /// A place for W (k, n), the transposed and padded weight, where this solver's block loop will read its regularized
    /// target (<see cref="LinearTarget"/>, empty until loaded); by default on the host. A GPU solver holds it on its
    /// device when <paramref name="encoder"/> searches there.
    /// </summary>
    LinearTarget Hold(int k, int n, ITileEncoder encoder) => new HostLinearTarget(k, n);

    /// <summary>
    /// LDLQ of <paramref name="target"/>'s regularized target, read where it is held, with the factor of
    /// <paramref name="factor"/>; Q goes into <see cref="LinearTarget.QuantizedArray"/> or stays where the target is held
    /// (<see cref="HeldLdlqResult"/>). By default through the host arrays.
    /// </summary>
    HeldLdlqResult Quantize(LinearTarget target, BasisFactor? factor, ITileEncoder encoder)
    {
        var result = Quantize(target.HostTarget(), target.K, target.N, factor, encoder, target.QuantizedArray());
        return new HeldLdlqResult(result.States, result.Quantized);
    }

    /// <summary>
    /// H' = <paramref name="hessian"/> in the basis of <paramref name="inputScale"/> (<see cref="GroupHessian.InQuantizedBasis"/>)
    /// and its factor (<see cref="Factor"/>), formed where the block loop will read them; by default on the host.
    /// </summary>
    /// <param name="lastUse">
    /// Nothing reads <paramref name="hessian"/> after this call for this linear: a device solver may then take its
    /// device copy (<see cref="GroupHessian.TakeResident"/>) and rotate it in place.
    /// </param>
    BasisFactor FactorInBasis(GroupHessian hessian, ReadOnlySpan<float> inputScale, double sigma, IDenseAlgebra algebra, bool lastUse = false) =>
        HostBasisFactor.Of(this, hessian, inputScale, sigma, algebra);

    /// <summary>
    /// <see cref="Quantize(ReadOnlySpan{float}, int, int, float[], ITileEncoder, float[])"/> with the factor of
    /// <paramref name="factor"/> (none when it is null or not factored), read where it is; by default from the host.
    /// </summary>
    LdlqResult Quantize(ReadOnlySpan<float> wr, int k, int n, BasisFactor? factor, ITileEncoder encoder, float[]? quantizedInto = null) =>
        Quantize(wr, k, n, factor?.FeedbackFactor(), encoder, quantizedInto);

    /// <summary>
    /// Columns <paramref name="share"/> of the (k, n) problem <paramref name="wr"/>: the (k, share.Count) result, the
    /// bits of those columns when the whole problem is quantized (one device's share of a <see cref="ColumnSplitSolver"/>).
    /// By default the share is quantized as a problem of its own, which gives those bits where the feedback products sum
    /// each column in an order that does not depend on the width (the host loop); a solver whose products do (cuBLAS
    /// picks its kernel by shape) runs the whole width and searches the share alone.
    /// </summary>
    LdlqResult QuantizeColumns(float[] wr, int k, int n, ColumnRange share, float[]? factor, ITileEncoder encoder) =>
        Quantize(ColumnSplit.Columns(wr, k, n, share), k, share.Count, factor, encoder);

    /// <summary><see cref="QuantizeColumns(float[], int, int, ColumnRange, float[], ITileEncoder)"/> with the factor of <paramref name="factor"/>, read where it is.</summary>
    LdlqResult QuantizeColumns(float[] wr, int k, int n, ColumnRange share, BasisFactor? factor, ITileEncoder encoder) =>
        Quantize(ColumnSplit.Columns(wr, k, n, share), k, share.Count, factor, encoder);
}
