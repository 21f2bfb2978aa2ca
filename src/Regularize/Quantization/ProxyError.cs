using Converter.Compute;

namespace Converter.Regularize.Quantization;

/// <summary>
/// The converter's proxy for output error (EXL3-FORMAT.md §3.7): tr(EᵀHE)/tr(WᵀHW) with E = W − Q, i.e. the
/// expected squared output error over calibration inputs relative to the output energy.
/// </summary>
public static class ProxyError
{
    public static unsafe double Compute(ReadOnlySpan<float> w, ReadOnlySpan<float> q, float[] hessian, int k, int n, IDenseAlgebra? algebra = null)
    {
        var wt = new float[n * k];
        var et = new float[n * k];
        fixed (float* pw = w, pq = q)
        {
            var (wa, qa) = ((nint)pw, (nint)pq);
            Parallel.For(0, n, c =>
            {
                for (int r = 0; r < k; r++)
                {
                    float wv = ((float*)wa)[(long)r * n + c];
                    wt[c * k + r] = wv;
                    et[c * k + r] = wv - ((float*)qa)[(long)r * n + c];
                }
            });
        }
        algebra ??= CpuDenseAlgebra.Instance;
        return QuadraticForm(et, hessian, k, n, algebra) / QuadraticForm(wt, hessian, k, n, algebra);
    }

    /// <summary>Σ_j x_jᵀ H x_j over the rows x_j of X (n × k), i.e. tr(X H Xᵀ).</summary>
    private static double QuadraticForm(float[] x, float[] h, int k, int n, IDenseAlgebra algebra)
    {
        var xh = new float[n * k];
        // H is symmetric, so x·Hᵀ = x·H.
        algebra.MultiplyTransposed(x, h, xh, n, k, k);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
            sum += (double)x[i] * xh[i];
        return sum;
    }
}
