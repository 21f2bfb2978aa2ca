using Converter.Compute;

namespace Converter.Regularize.Quantization;

/// <summary>
/// The converter's proxy for output error (docs/exl3-format.md §3.7): tr(EᵀHE)/tr(WᵀHW) with E = W − Q, i.e. the
/// expected squared output error over calibration inputs relative to the output energy.
/// </summary>
public static class ProxyError
{
    /// <param name="w">The target W (k, n), row-major.</param>
    /// <param name="q">Its quantization (k, n).</param>
    /// <param name="hessian">H (k, k), symmetric.</param>
    /// <param name="algebra">Where both traces run (the CPU when null): a GPU takes W, Q and H up once and returns two sums.</param>
    public static double Compute(ReadOnlySpan<float> w, ReadOnlySpan<float> q, float[] hessian, int k, int n, IDenseAlgebra? algebra = null)
    {
        // Each algebra checks the shapes (QuadraticForms.Check) before it moves anything.
        var (error, weight) = (algebra ?? CpuDenseAlgebra.Instance).ProxyTraces(hessian, w, q, k, n);
        return error / weight;
    }

    /// <summary>The proxy error with the H' of <paramref name="factor"/>, read where it is (a device keeps its own copy).</summary>
    public static double Compute(ReadOnlySpan<float> w, ReadOnlySpan<float> q, BasisFactor factor, int n, IDenseAlgebra? algebra = null)
    {
        var (error, weight) = factor.ProxyTraces(w, q, n, algebra ?? CpuDenseAlgebra.Instance);
        return error / weight;
    }

    /// <summary>
    /// The proxy error of <paramref name="target"/>'s regularized target and its quantization Q, read where each is held:
    /// <paramref name="q"/> gives Q's host copy to a step that reads it there.
    /// </summary>
    public static double Compute(LinearTarget target, Func<float[]> q, BasisFactor factor, IDenseAlgebra? algebra = null)
    {
        var (error, weight) = factor.ProxyTraces(target, q, algebra ?? CpuDenseAlgebra.Instance);
        return error / weight;
    }
}
