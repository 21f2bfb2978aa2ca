using MathNet.Numerics.LinearAlgebra;

namespace Converter.Regularize.Ldl;

/// <summary>Result of <see cref="BlockLdl.Decompose"/>: the strict block-lower factor, or why there is none.</summary>
/// <param name="Factor">L_u (k×k, row-major) with zero 16×16 diagonal blocks, or null when Cholesky kept failing.</param>
/// <param name="Retries">How many times the diagonal was raised before Cholesky succeeded.</param>
public sealed record BlockLdlResult(float[]? Factor, int Retries);

/// <summary>
/// Block LDL of a Hessian with 16×16 blocks (EXL3-FORMAT.md §3.6): H = L_u·D·L_uᵀ with L_u unit block-lower
/// triangular, returned with its diagonal blocks zeroed (strictly block-lower) as LDLQ needs it.
/// </summary>
public static class BlockLdl
{
    public const int BlockSize = 16;

    /// <summary>Cholesky attempts after the first failure (§3.6: up to 10, each adding 2·σ·mean(diag)).</summary>
    public const int MaxRetries = 10;

    /// <param name="hessian">Symmetric k×k matrix, row-major; not modified.</param>
    /// <param name="sigma">Damping σ of §3.2 (0.025); a retry adds 2σ·mean(diag) to the diagonal.</param>
    public static BlockLdlResult Decompose(ReadOnlySpan<double> hessian, int k, double sigma)
    {
        if (k % BlockSize != 0 || hessian.Length != k * k)
            throw new ArgumentException($"Hessian must be k×k with k a multiple of {BlockSize}");
        var h = Matrix<double>.Build.DenseOfRowMajor(k, k, hessian.ToArray());
        double diagMean = h.Diagonal().Average();
        for (int attempt = 0; attempt <= MaxRetries; attempt++)
        {
            if (attempt > 0)
            {
                for (int i = 0; i < k; i++)
                    h[i, i] += 2 * sigma * diagMean;
            }
            Matrix<double> l;
            try
            {
                l = h.Cholesky().Factor;
            }
            catch (ArgumentException)
            {
                continue;
            }
            if (!AllFinite(l))
                continue;
            return new BlockLdlResult(StrictBlockFactor(l, k), attempt);
        }
        return new BlockLdlResult(null, MaxRetries);
    }

    /// <summary>L_u = L·blockdiag(D_b)⁻¹ with the diagonal blocks then set to zero.</summary>
    private static float[] StrictBlockFactor(Matrix<double> l, int k)
    {
        var factor = new float[k * k];
        for (int b = 0; b < k; b += BlockSize)
        {
            var inverse = l.SubMatrix(b, BlockSize, b, BlockSize).Inverse();
            // Only rows below the diagonal block are kept: the block itself becomes I and then 0.
            int below = k - b - BlockSize;
            if (below == 0)
                continue;
            var column = l.SubMatrix(b + BlockSize, below, b, BlockSize) * inverse;
            for (int i = 0; i < below; i++)
            {
                for (int j = 0; j < BlockSize; j++)
                    factor[(b + BlockSize + i) * k + b + j] = (float)column[i, j];
            }
        }
        return factor;
    }

    private static bool AllFinite(Matrix<double> m)
    {
        foreach (var v in m.Enumerate())
        {
            if (!double.IsFinite(v))
                return false;
        }
        return true;
    }
}
