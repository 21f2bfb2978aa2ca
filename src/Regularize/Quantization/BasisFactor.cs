using Converter.Compute;
using Converter.Regularize.Hessian;
using Converter.Regularize.Ldl;

namespace Converter.Regularize.Quantization;

/// <summary>
/// One linear's Hessian in the basis it is quantized in (H', docs/exl3-format.md §3.4) and H''s block LDL factor L_u
/// (§3.6), formed by an <see cref="ILdlqSolver"/> where its block loop runs (<see cref="ILdlqSolver.FactorInBasis"/>):
/// as host arrays, or as device memory that the block loop and the proxy traces read where it is (a 70B down_proj's
/// H' and L_u are 3.3 GB each; moving them to the host and back took 7.6 s of its 34.8 s layer on an H200).
/// </summary>
public abstract class BasisFactor : IDisposable
{
    protected BasisFactor(int k, int retries, bool factored)
    {
        K = k;
        Retries = retries;
        Factored = factored;
    }

    /// <summary>The padded input width: H' and L_u are K×K.</summary>
    public int K { get; }

    /// <summary>How many times the diagonal was raised before Cholesky succeeded (all of them when it never did).</summary>
    public int Retries { get; }

    /// <summary>Whether H' was factored: false when Cholesky kept failing (the linear then quantizes without feedback).</summary>
    public bool Factored { get; }

    /// <summary>H' (K×K, row-major) on the host; a device copy comes down on the first call.</summary>
    public abstract float[] BasisHessian();

    /// <summary>L_u (K×K, row-major) on the host, as <see cref="BlockLdl.Decompose"/> returns it; null when not factored or released.</summary>
    public abstract float[]? HostFactor();

    /// <summary>
    /// L_u on the host for a block loop that runs there, or null when H' was not factored (the linear then quantizes
    /// without feedback); a factor released before its block loop is an error.
    /// </summary>
    public float[]? FeedbackFactor() => Factored ? HostFactor() ?? throw new InvalidOperationException("the factor was released") : null;

    /// <summary>
    /// The proxy error's two traces (<see cref="ProxyError"/>) with H' for the target W and its quantization Q (K, n):
    /// here on <paramref name="algebra"/> with the host H'; a device factor reads its own copy in place.
    /// </summary>
    public virtual (double Error, double Weight) ProxyTraces(ReadOnlySpan<float> w, ReadOnlySpan<float> q, int n, IDenseAlgebra algebra) =>
        algebra.ProxyTraces(BasisHessian(), w, q, K, n);

    /// <summary>
    /// <see cref="ProxyTraces(ReadOnlySpan{float}, ReadOnlySpan{float}, int, IDenseAlgebra)"/> of <paramref name="target"/>'s
    /// regularized target and Q (its host copy, from <paramref name="q"/>); a device factor reads a target and Q held on
    /// its device in place.
    /// </summary>
    public virtual (double Error, double Weight) ProxyTraces(LinearTarget target, Func<float[]> q, IDenseAlgebra algebra) =>
        ProxyTraces(target.HostTarget(), q(), target.N, algebra);

    /// <summary>Frees L_u once the block loop has run (H' stays for the proxy error).</summary>
    public abstract void ReleaseFactor();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>H' and L_u as host arrays: what <see cref="HostLdlqSolver"/> forms, and what a test builds directly.</summary>
public sealed class HostBasisFactor : BasisFactor
{
    private readonly float[] _basis;
    private float[]? _factor;

    /// <param name="basis">H' (k×k).</param>
    /// <param name="ldl">H''s block LDL (<see cref="BlockLdl.Decompose"/>).</param>
    public HostBasisFactor(float[] basis, int k, BlockLdlResult ldl) : base(k, ldl.Retries, ldl.Factor is not null)
    {
        if (basis.Length != (long)k * k)
            throw new ArgumentException($"H' must be {k}×{k}, got {basis.Length} values", nameof(basis));
        _basis = basis;
        _factor = ldl.Factor;
    }

    /// <summary>H' of <paramref name="hessian"/> in the basis of <paramref name="inputScale"/> (<see cref="GroupHessian.InQuantizedBasis"/>), factored by <paramref name="solver"/>.</summary>
    public static HostBasisFactor Of(ILdlqSolver solver, GroupHessian hessian, ReadOnlySpan<float> inputScale, double sigma, IDenseAlgebra algebra)
    {
        var basis = hessian.InQuantizedBasis(inputScale);
        return new HostBasisFactor(basis, hessian.PaddedK, solver.Factor(basis, hessian.PaddedK, sigma, algebra));
    }

    public override float[] BasisHessian() => _basis;

    public override float[]? HostFactor() => _factor;

    public override void ReleaseFactor() => _factor = null;
}
