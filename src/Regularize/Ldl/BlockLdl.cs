using System.Numerics;
using Converter.Compute;

namespace Converter.Regularize.Ldl;

/// <summary>Result of <see cref="BlockLdl.Decompose"/>: the strict block-lower factor, or why there is none.</summary>
/// <param name="Factor">L_u (k×k, row-major) with zero 16×16 diagonal blocks, or null when Cholesky kept failing.</param>
/// <param name="Retries">How many times the diagonal was raised before Cholesky succeeded.</param>
public sealed record BlockLdlResult(float[]? Factor, int Retries);

/// <summary>
/// Block LDL of a Hessian with 16×16 blocks (docs/exl3-format.md §3.6): H = L_u·D·L_uᵀ with L_u unit block-lower
/// triangular, returned with its diagonal blocks zeroed (strictly block-lower) as LDLQ needs it.
/// </summary>
public static class BlockLdl
{
    public const int BlockSize = 16;

    /// <summary>Cholesky attempts after the first failure (§3.6: up to 10, each adding 2·σ·mean(diag)).</summary>
    public const int MaxRetries = 10;

    /// <param name="hessian">Symmetric k×k matrix, row-major; not modified.</param>
    /// <param name="sigma">Damping σ of §3.2 (0.025); a retry adds 2σ·mean(diag) to the diagonal.</param>
    /// <param name="algebra">Where the Cholesky runs (the CPU when null).</param>
    public static BlockLdlResult Decompose(ReadOnlySpan<double> hessian, int k, double sigma, IDenseAlgebra? algebra = null)
    {
        if (k % BlockSize != 0 || hessian.Length != (long)k * k)
            throw new ArgumentException($"Hessian must be k×k with k a multiple of {BlockSize}");
        algebra ??= CpuDenseAlgebra.Instance;
        double diagMean = MeanDiagonal(hessian, k);
        var l = new double[ArrayLength.Of(k, k, "Hessian")];
        for (int attempt = 0; attempt <= MaxRetries; attempt++)
        {
            hessian.CopyTo(l);
            for (int i = 0; i < k; i++)
                l[i * k + i] += Damping(attempt, sigma, diagMean);
            if (algebra.TryCholesky(l, k))
                return new BlockLdlResult(StrictBlockFactor(l, k), attempt);
        }
        return new BlockLdlResult(null, MaxRetries);
    }

    /// <summary>mean(diag H) of a k×k row-major matrix, summed in double.</summary>
    public static double MeanDiagonal<T>(ReadOnlySpan<T> hessian, int k) where T : unmanaged, INumberBase<T>
    {
        double sum = 0;
        for (int i = 0; i < k; i++)
            sum += double.CreateChecked(hessian[i * k + i]);
        return sum / k;
    }

    /// <summary>The same mean from the diagonal alone (a device copies out only H's diagonal), summed in the same order.</summary>
    public static double MeanOf(ReadOnlySpan<float> diagonal)
    {
        double sum = 0;
        foreach (float v in diagonal)
            sum += v;
        return sum / diagonal.Length;
    }

    /// <summary>What attempt <paramref name="attempt"/> adds to the diagonal (§3.6: 2σ·mean(diag) more per retry).</summary>
    public static double Damping(int attempt, double sigma, double diagMean) => attempt * 2 * sigma * diagMean;

    /// <summary>L_u = L·blockdiag(L_bb)⁻¹ (L row-major, lower) with the diagonal blocks then set to zero.</summary>
    private static float[] StrictBlockFactor(double[] l, int k)
    {
        var factor = new float[ArrayLength.Of(k, k, "LDL factor")];
        Parallel.For(0, k / BlockSize, block =>
        {
            int b = block * BlockSize;
            int below = k - b - BlockSize;
            if (below == 0)
                return;
            var inverse = LowerInverse(l, k, b);
            // Only rows below the diagonal block are kept: the block itself becomes I and then 0.
            Span<double> row = stackalloc double[BlockSize];
            for (int i = b + BlockSize; i < k; i++)
            {
                row.Clear();
                for (int t = 0; t < BlockSize; t++)
                {
                    double v = l[i * k + b + t];
                    if (v == 0)
                        continue;
                    // (L_ib · L_bb⁻¹)_j = Σ_t L_ib[t] · inv[t, j]; inv is lower, so j ≤ t.
                    for (int j = 0; j <= t; j++)
                        row[j] += v * inverse[t * BlockSize + j];
                }
                for (int j = 0; j < BlockSize; j++)
                    factor[i * k + b + j] = (float)row[j];
            }
        });
        return factor;
    }

    /// <summary>The inverse of the lower-triangular 16×16 diagonal block at (b, b), by forward substitution.</summary>
    private static double[] LowerInverse(double[] l, int k, int b)
    {
        var inv = new double[BlockSize * BlockSize];
        for (int j = 0; j < BlockSize; j++)
        {
            inv[j * BlockSize + j] = 1 / l[(b + j) * k + b + j];
            for (int i = j + 1; i < BlockSize; i++)
            {
                double sum = 0;
                for (int t = j; t < i; t++)
                    sum += l[(b + i) * k + b + t] * inv[t * BlockSize + j];
                inv[i * BlockSize + j] = -sum / l[(b + i) * k + b + i];
            }
        }
        return inv;
    }
}
