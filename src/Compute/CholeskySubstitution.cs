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
}
