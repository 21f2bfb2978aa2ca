using Converter.Compute;

namespace Converter.Regularize.Quantization;

/// <summary>
/// The converter's proxy for output error (EXL3-FORMAT.md §3.7): tr(EᵀHE)/tr(WᵀHW) with E = W − Q, i.e. the
/// expected squared output error over calibration inputs relative to the output energy.
/// </summary>
public static class ProxyError
{
    public static double Compute(ReadOnlySpan<float> w, ReadOnlySpan<float> q, float[] hessian, int k, int n)
    {
        var wt = new float[n * k];
        var et = new float[n * k];
        for (int r = 0; r < k; r++)
        {
            for (int c = 0; c < n; c++)
            {
                wt[c * k + r] = w[r * n + c];
                et[c * k + r] = w[r * n + c] - q[r * n + c];
            }
        }
        return QuadraticForm(et, hessian, k, n) / QuadraticForm(wt, hessian, k, n);
    }

    /// <summary>Σ_j x_jᵀ H x_j over the rows x_j of X (n × k), i.e. tr(X H Xᵀ).</summary>
    private static double QuadraticForm(float[] x, float[] h, int k, int n)
    {
        var xh = new float[n * k];
        // H is symmetric, so x·Hᵀ = x·H.
        MatMul.MultiplyTransposed(x, h, xh, n, k, k);
        double sum = 0;
        for (int i = 0; i < x.Length; i++)
            sum += (double)x[i] * xh[i];
        return sum;
    }
}
