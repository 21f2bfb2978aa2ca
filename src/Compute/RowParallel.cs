namespace Converter.Compute;

/// <summary>
/// Runs an action on every row of a row-major matrix with the rows in parallel. Each row is processed exactly as a
/// sequential loop would, so results do not depend on the number of threads.
/// </summary>
public static unsafe class RowParallel
{
    public delegate void RowAction(Span<float> row, int index);

    public static void ForEach(Span<float> m, int rows, int cols, RowAction body)
    {
        if ((long)rows * cols > m.Length)
            throw new ArgumentException($"a ({rows}, {cols}) matrix does not fit in {m.Length} values", nameof(m));
        fixed (float* p = m)
        {
            nint address = (nint)p;
            Parallel.For(0, rows, r => body(new Span<float>((float*)address + (long)r * cols, cols), r));
        }
    }
}
