using Converter.Compute;

namespace Converter.Compute.Gemm;

/// <summary>
/// The register-blocked inner kernel of <see cref="MatMul"/>: one 4×4 block of dot products over a slice of the
/// shared dimension. One struct per instruction set, one generic driver (<see cref="MatMul"/>) owns the tiling and
/// threading, so the hot loop has no branch on the hardware.
/// </summary>
internal unsafe interface IGemmKernel
{
    /// <summary>
    /// y[i·ldy + j] += Σ_{p&lt;kc} x[i·ldx + p] · w[j·ldw + p] for i, j in 0..3: four rows of x against four rows
    /// of W.
    /// </summary>
    static abstract void Tile4x4(float* x, nint ldx, float* w, nint ldw, int kc, float* y, nint ldy);
}
