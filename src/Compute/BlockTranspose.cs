namespace Converter.Compute;

/// <summary>
/// Matrix transposition in 64×64 blocks, so that both the reads and the writes of a block stay within a few cache
/// lines per row. The per-row loops it replaced (one strided read or write per value) took 3× as long on an 8B
/// gate_proj (4096 × 14336: ~300 against ~95 ms on 2 cores), and the converter transposes every weight twice.
/// </summary>
public static class BlockTranspose
{
    private const int Block = 64;

    /// <summary>
    /// dst[c·dstStride + r] = src[r·srcStride + c] for r &lt; rows, c &lt; cols: the top-left rows × cols of src
    /// (row stride srcStride) into dst transposed (row stride dstStride). Nothing else of dst is written.
    /// </summary>
    public static unsafe void Into(ReadOnlySpan<float> src, int rows, int cols, int srcStride, Span<float> dst, int dstStride)
    {
        if (rows < 0 || cols < 0 || cols > srcStride || rows > dstStride)
            throw new ArgumentException($"a {rows}×{cols} block does not fit strides {srcStride} (source) and {dstStride} (destination)");
        if (rows == 0 || cols == 0)
            return;
        if ((long)(rows - 1) * srcStride + cols > src.Length || (long)(cols - 1) * dstStride + rows > dst.Length)
            throw new ArgumentException($"a {rows}×{cols} block with strides {srcStride} and {dstStride} passes the arrays' ends");
        fixed (float* ps = src)
        fixed (float* pd = dst)
        {
            nint source = (nint)ps, destination = (nint)pd;
            // Each task writes whole destination rows (a stripe of source columns): no two write the same value.
            Parallel.For(0, (cols + Block - 1) / Block, stripe =>
            {
                float* s = (float*)source, d = (float*)destination;
                int c0 = stripe * Block, c1 = Math.Min(cols, c0 + Block);
                for (int r0 = 0; r0 < rows; r0 += Block)
                {
                    int r1 = Math.Min(rows, r0 + Block);
                    for (int c = c0; c < c1; c++)
                    {
                        float* row = d + (long)c * dstStride;
                        for (int r = r0; r < r1; r++)
                            row[r] = s[(long)r * srcStride + c];
                    }
                }
            });
        }
    }
}
