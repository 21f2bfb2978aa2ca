using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>
/// The solve after a Cholesky factorization (<see cref="IDenseAlgebra.TryCholesky"/>): b ← (L·Lᵀ)⁻¹b by forward then
/// back substitution, with L the lower triangle of a row-major (m, m) matrix.
/// </summary>
public static class CholeskySubstitution
{
    public static void Solve(ReadOnlySpan<double> l, Span<double> b, int m)
    {
        if (l.Length < (long)m * m || b.Length < m)
            throw new ArgumentException($"a Cholesky solve of order {m} needs L of ({m}, {m}) and b of {m}");
        for (int i = 0; i < m; i++)
        {
            double s = b[i];
            for (int p = 0; p < i; p++)
                s -= l[(int)((long)i * m + p)] * b[p];
            b[i] = s / l[(int)((long)i * m + i)];
        }
        for (int i = m - 1; i >= 0; i--)
        {
            double s = b[i];
            for (int p = i + 1; p < m; p++)
                s -= l[(int)((long)p * m + i)] * b[p];
            b[i] = s / l[(int)((long)i * m + i)];
        }
    }

    /// <summary>Columns solved together per task: a stripe's rows of B stay in cache across the k row updates.</summary>
    private const int Stripe = 64;

    /// <summary>
    /// B ← (L·Lᵀ)⁻¹B for B (m, columns) row-major, the same substitutions as <see cref="Solve"/> run on whole rows of
    /// stripes of B: each step reads a row of L and updates a contiguous row segment, where solving column by column
    /// would read L down its columns in the back substitution (k strided reads per value).
    /// </summary>
    public static void SolveColumns(double[] l, double[] b, int m, int columns)
    {
        if (l.Length < (long)m * m || b.Length < (long)m * columns)
            throw new ArgumentException($"a Cholesky solve of order {m} needs L of ({m}, {m}) and B of ({m}, {columns})");
        Parallel.For(0, (columns + Stripe - 1) / Stripe, s =>
        {
            int c0 = s * Stripe, width = Math.Min(Stripe, columns - c0);
            for (int i = 0; i < m; i++)
            {
                var row = b.AsSpan(i * columns + c0, width);
                for (int p = 0; p < i; p++)
                    TensorPrimitives.MultiplyAdd(b.AsSpan(p * columns + c0, width), -l[i * m + p], row, row);
                TensorPrimitives.Divide(row, l[i * m + i], row);
            }
            for (int i = m - 1; i >= 0; i--)
            {
                var row = b.AsSpan(i * columns + c0, width);
                for (int p = i + 1; p < m; p++)
                    TensorPrimitives.MultiplyAdd(b.AsSpan(p * columns + c0, width), -l[p * m + i], row, row);
                TensorPrimitives.Divide(row, l[i * m + i], row);
            }
        });
    }
}
