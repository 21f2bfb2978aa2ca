using System.Numerics.Tensors;

namespace Converter.Compute;

/// <summary>
/// C (p×n) += A (p×m, row stride lda) · B (m×n, row stride n) on the CPU — the LDLQ feedback product, where A is a
/// block of L_uᵀ and B the error rows already quantized. Row-major with B streamed in slices that stay in cache while every
/// row of C uses them; rows of C are independent, so they run in parallel.
/// </summary>
internal static class RowMultiplyAdd
{
    private const int SliceRows = 64;
    private const int ChunkRows = 8;

    public static void Run(ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, Span<float> c, int p, int m, int n)
    {
        if (p == 0 || m == 0 || n == 0)
            return;
        if (c.Length < p * n || b.Length < m * n || a.Length < (p - 1) * lda + m)
            throw new ArgumentException("feedback product operands are too small for their shapes");
        unsafe
        {
            fixed (float* pa = a, pb = b, pc = c)
            {
                var (aa, bb, cc) = ((nint)pa, (nint)pb, (nint)pc);
                int chunks = (p + ChunkRows - 1) / ChunkRows;
                Parallel.For(0, chunks, chunk =>
                {
                    int i0 = chunk * ChunkRows, i1 = Math.Min(p, i0 + ChunkRows);
                    for (int l0 = 0; l0 < m; l0 += SliceRows)
                    {
                        int l1 = Math.Min(m, l0 + SliceRows);
                        for (int i = i0; i < i1; i++)
                        {
                            var row = new Span<float>((float*)cc + (long)i * n, n);
                            float* coefficients = (float*)aa + (long)i * lda;
                            for (int l = l0; l < l1; l++)
                            {
                                float coefficient = coefficients[l];
                                if (coefficient != 0)
                                    TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>((float*)bb + (long)l * n, n), coefficient, row, row);
                            }
                        }
                    }
                });
            }
        }
    }
}
