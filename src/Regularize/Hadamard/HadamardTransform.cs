using System.Numerics;

namespace Converter.Regularize.Hadamard;

/// <summary>
/// Block-diagonal Hadamard rotation with 128×128 blocks H128/√128, H128 the Sylvester (natural-order) matrix
/// H[i][j] = (−1)^popcount(i &amp; j) (docs/exl3-format.md §4.4). The normalized block is symmetric and its own inverse,
/// so the same call applies and undoes the rotation.
/// </summary>
public static class HadamardTransform
{
    public const int BlockSize = 128;

    /// <summary>1/√128 (§4.4).</summary>
    public const float Scale = 0.08838834764831845f;

    /// <summary>x ← H128·x/√128 in place, by the in-place butterfly (which yields natural Sylvester order).</summary>
    public static void Transform128(Span<float> x)
    {
        if (x.Length != BlockSize)
            throw new ArgumentException("a Hadamard block has 128 values", nameof(x));
        for (int h = 1; h < BlockSize; h <<= 1)
        {
            for (int i = 0; i < BlockSize; i += 2 * h)
            {
                for (int j = i; j < i + h; j++)
                {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
            }
        }
        for (int i = 0; i < BlockSize; i++)
            x[i] *= Scale;
    }

    /// <summary>W ← Had·W for row-major W (rows, cols): every column rotated in 128-row blocks.</summary>
    public static unsafe void LeftMultiply(Span<float> w, int rows, int cols)
    {
        CheckShape(w, rows, cols, rows, "rows");
        fixed (float* p = w)
        {
            nint address = (nint)p;
            // 128-row blocks are independent; each runs the same operations whichever thread takes it.
            ForEach(rows / BlockSize, (long)rows * cols, block =>
            {
                var span = new Span<float>((float*)address + (long)block * BlockSize * cols, BlockSize * cols);
                for (int h = 1; h < BlockSize; h <<= 1)
                {
                    for (int i = 0; i < BlockSize; i += 2 * h)
                    {
                        for (int j = i; j < i + h; j++)
                            Butterfly(span.Slice(j * cols, cols), span.Slice((j + h) * cols, cols));
                    }
                }
                ScaleInPlace(span);
            });
        }
    }

    /// <summary>W ← W·Had for row-major W (rows, cols): every row rotated in 128-column blocks.</summary>
    public static unsafe void RightMultiply(Span<float> w, int rows, int cols)
    {
        CheckShape(w, rows, cols, cols, "columns");
        fixed (float* p = w)
        {
            nint address = (nint)p;
            ForEach(rows, (long)rows * cols, r =>
            {
                var row = new Span<float>((float*)address + (long)r * cols, cols);
                for (int block = 0; block < cols; block += BlockSize)
                    TransformBlock(row.Slice(block, BlockSize));
                ScaleInPlace(row);
            });
        }
    }

    /// <summary>
    /// <see cref="Transform128"/> without the scale: the same butterflies in the same order, the stages whose halves
    /// span a SIMD vector or more as vector adds and subtracts (each element sees the same operations, so the result
    /// is the scalar loop's to the bit). The scalar loop made RightMultiply 3.4× slower than LeftMultiply (14336², 2 cores).
    /// </summary>
    private static void TransformBlock(Span<float> x)
    {
        int h = 1;
        for (; h < BlockSize && h < Vector<float>.Count; h <<= 1)
        {
            for (int i = 0; i < BlockSize; i += 2 * h)
            {
                for (int j = i; j < i + h; j++)
                {
                    float a = x[j], b = x[j + h];
                    x[j] = a + b;
                    x[j + h] = a - b;
                }
            }
        }
        for (; h < BlockSize; h <<= 1)
        {
            for (int i = 0; i < BlockSize; i += 2 * h)
                Butterfly(x.Slice(i, h), x.Slice(i + h, h));
        }
    }

    /// <summary>Runs independent items in parallel when the matrix is large enough to pay for it.</summary>
    private static void ForEach(int items, long elements, Action<int> body)
    {
        if (elements < ParallelThreshold)
        {
            for (int i = 0; i < items; i++)
                body(i);
        }
        else
        {
            Parallel.For(0, items, body);
        }
    }

    private const long ParallelThreshold = 1 << 18;

    private static void Butterfly(Span<float> a, Span<float> b)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(a);
            var vb = System.Runtime.InteropServices.MemoryMarshal.Cast<float, Vector<float>>(b);
            for (int v = 0; v < va.Length; v++)
            {
                var x = va[v];
                var y = vb[v];
                va[v] = x + y;
                vb[v] = x - y;
            }
            i = va.Length * Vector<float>.Count;
        }
        for (; i < a.Length; i++)
        {
            float x = a[i], y = b[i];
            a[i] = x + y;
            b[i] = x - y;
        }
    }

    private static void ScaleInPlace(Span<float> x) =>
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, Scale, x);

    private static void CheckShape(Span<float> w, int rows, int cols, int rotated, string what)
    {
        if (w.Length != rows * cols)
            throw new ArgumentException($"matrix has {w.Length} values, expected {rows}×{cols}");
        if (rotated % BlockSize != 0)
            throw new ArgumentException($"{what} ({rotated}) must be a multiple of {BlockSize} for the Hadamard rotation (docs/exl3-format.md §3.1)");
    }
}
