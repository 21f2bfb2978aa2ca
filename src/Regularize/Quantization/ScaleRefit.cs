using Converter.Compute;
using Converter.Regularize.Hadamard;

namespace Converter.Regularize.Quantization;

/// <summary>The stored scales after <see cref="ScaleRefit"/> and the proxy error tr(EᵀHE)/tr(WᵀHW) before and after, in the original basis.</summary>
public sealed record ScaleRefitResult(float[] Suh, float[] Svh, double ProxyBefore, double ProxyAfter);

/// <summary>
/// Refits the stored channel scales to the codes LDLQ chose (issue 13 part 3, an experiment): with the trellis fixed,
/// the reconstruction Ŵ = diag(su)·R·diag(sv), R = Had·Q·Had, is linear in sv for fixed su and in su for fixed sv, so
/// each has a closed-form least-squares optimum of the true proxy error tr((W−Ŵ)ᵀH(W−Ŵ)) in the original basis.
/// Two alternating rounds, then the scales are rounded to fp16 as stored; the result is kept only when that rounded
/// refit lowers the error. The format is unchanged: only the values of suh and svh differ.
/// </summary>
/// <remarks>
/// sv step, per output column j with p = su ⊙ r_j: sv_j = pᵀHw_j / pᵀHp. su step, with M = R·diag(sv):
/// (H ⊙ M·Mᵀ)·su = rowsum(M ⊙ H·W), a k×k positive (semi)definite system (a Schur product of two such matrices).
/// Padding rows and columns, and columns whose scale is zero (all-zero outputs), keep their scales.
/// </remarks>
public static class ScaleRefit
{
    public const int Rounds = 2;

    /// <param name="w0">W (k, n): the HF weight transposed and padded, before any regularization.</param>
    /// <param name="q">The decoded trellis Q (k, n) in the quantized basis.</param>
    /// <param name="hessian">The damped Hessian (k, k) in the original input basis.</param>
    /// <param name="su">Stored input scales (k, fp16-exact).</param>
    /// <param name="sv">Stored output scales (n, fp16-exact).</param>
    public static ScaleRefitResult Refit(ReadOnlySpan<float> w0, ReadOnlySpan<float> q, float[] hessian, int k, int n, float[] su, float[] sv,
        int inFeatures, int outFeatures, IDenseAlgebra? algebra = null)
    {
        if (w0.Length != (long)k * n || q.Length != w0.Length || hessian.Length != (long)k * k || su.Length != k || sv.Length != n || inFeatures > k || outFeatures > n)
            throw new ArgumentException($"scale refit needs W and Q of ({k}, {n}), H of ({k}, {k}), {k} input and {n} output scales");
        algebra ??= CpuDenseAlgebra.Instance;
        var r = q.ToArray();
        HadamardTransform.LeftMultiply(r, k, n);
        HadamardTransform.RightMultiply(r, k, n);
        var hw = new float[r.Length];
        algebra.MultiplyAdd(hessian, k, w0, hw, k, k, n);
        double weight = Dot(w0, hw);
        var p = new float[r.Length];
        var hp = new float[r.Length];

        double Error(ReadOnlySpan<float> inScales, ReadOnlySpan<float> outScales)
        {
            Scaled(r, inScales, outScales, p, k, n);
            Array.Clear(hp);
            algebra.MultiplyAdd(hessian, k, p, hp, k, k, n);
            return (weight - 2 * Dot(p, hw) + Dot(p, hp)) / weight;
        }

        double before = Error(su, sv);
        var newSu = (float[])su.Clone();
        var newSv = (float[])sv.Clone();
        var ones = Enumerable.Repeat(1f, n).ToArray();
        var mm = new float[ArrayLength.Of(k, k, "scale refit Gram")];
        for (int round = 0; round < Rounds; round++)
        {
            // sv: P = diag(su)·R, one ratio per column.
            Scaled(r, newSu, ones, p, k, n);
            Array.Clear(hp);
            algebra.MultiplyAdd(hessian, k, p, hp, k, k, n);
            for (int j = 0; j < outFeatures; j++)
            {
                if (sv[j] == 0)
                    continue;
                double num = 0, den = 0;
                for (int i = 0; i < k; i++)
                {
                    num += (double)p[i * n + j] * hw[i * n + j];
                    den += (double)p[i * n + j] * hp[i * n + j];
                }
                if (den > 0 && double.IsFinite(num / den))
                    newSv[j] = (float)(num / den);
            }

            // su: M = R·diag(sv); (H ⊙ M·Mᵀ)·su = rowsum(M ⊙ H·W) over the real input rows.
            Scaled(r, Enumerable.Repeat(1f, k).ToArray(), newSv, p, k, n);
            algebra.MultiplyTransposed(p, p, mm, k, k, n);
            int m = inFeatures;
            var a = new double[(long)m * m];
            var b = new double[m];
            for (int i = 0; i < m; i++)
            {
                for (int l = 0; l < m; l++)
                    a[(long)i * m + l] = (double)hessian[(long)i * k + l] * mm[(long)i * k + l];
                double s = 0;
                for (int j = 0; j < n; j++)
                    s += (double)p[i * n + j] * hw[i * n + j];
                b[i] = s;
            }
            if (!algebra.TryCholesky(a, m))
                break;
            CholeskySubstitution.Solve(a, b, m);
            if (!b.All(double.IsFinite))
                break;
            for (int i = 0; i < m; i++)
                newSu[i] = (float)b[i];
        }
        for (int i = 0; i < k; i++)
            newSu[i] = LinearRegularizer.RoundToHalf(newSu[i]);
        for (int j = 0; j < n; j++)
            newSv[j] = LinearRegularizer.RoundToHalf(newSv[j]);
        double after = Error(newSu, newSv);
        return after < before ? new ScaleRefitResult(newSu, newSv, before, after) : new ScaleRefitResult(su, sv, before, before);
    }

    /// <summary>target = diag(rows)·r·diag(columns).</summary>
    private static void Scaled(float[] r, ReadOnlySpan<float> rows, ReadOnlySpan<float> columns, float[] target, int k, int n)
    {
        var c = columns.ToArray();
        var rs = rows.ToArray();
        RowParallel.ForEach(target, k, n, (row, i) =>
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(r.AsSpan(i * n, n), c, row);
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, rs[i], row);
        });
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
            s += (double)a[i] * b[i];
        return s;
    }
}
