using Converter.Compute;

namespace Converter.Regularize.Quantization;

/// <summary>
/// The converter's proxy for output error (EXL3-FORMAT.md §3.7): tr(EᵀHE)/tr(WᵀHW) with E = W − Q, i.e. the
/// expected squared output error over calibration inputs relative to the output energy.
/// </summary>
public static unsafe class ProxyError
{
    /// <param name="w">The target W (k, n), row-major.</param>
    /// <param name="q">Its quantization (k, n).</param>
    /// <param name="hessian">H (k, k), symmetric.</param>
    public static double Compute(ReadOnlySpan<float> w, ReadOnlySpan<float> q, float[] hessian, int k, int n, IDenseAlgebra? algebra = null)
    {
        if (w.Length != (long)k * n || q.Length != w.Length || hessian.Length != (long)k * k)
            throw new ArgumentException($"proxy error operands do not match W ({k}, {n}) and H ({k}, {k})");
        algebra ??= CpuDenseAlgebra.Instance;
        var e = GC.AllocateUninitializedArray<float>(w.Length);
        System.Numerics.Tensors.TensorPrimitives.Subtract(w, q, e);
        return QuadraticForm(e, hessian, k, n, algebra) / QuadraticForm(w, hessian, k, n, algebra);
    }

    /// <summary>
    /// tr(Xᵀ H X) = Σ X ⊙ (H·X) for X (k, n) row-major, with H·X as one product in X's own layout (the former
    /// column-by-column transposes of W and E cost more than the products on a 4096×14336 layer).
    /// </summary>
    private static double QuadraticForm(ReadOnlySpan<float> x, float[] h, int k, int n, IDenseAlgebra algebra)
    {
        var hx = new float[x.Length];
        algebra.MultiplyAdd(h, k, x, hx, k, k, n);
        // Per-row partial sums in double, added in row order: the same result whatever the thread count.
        var rows = new double[k];
        fixed (float* px = x)
        {
            nint address = (nint)px;
            Parallel.For(0, k, r =>
            {
                double sum = 0;
                float* xr = (float*)address + (long)r * n;
                for (int i = 0; i < n; i++)
                    sum += (double)xr[i] * hx[(long)r * n + i];
                rows[r] = sum;
            });
        }
        double total = 0;
        foreach (var s in rows)
            total += s;
        return total;
    }
}
