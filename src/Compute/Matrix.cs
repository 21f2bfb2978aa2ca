namespace Converter.Compute;

/// <summary>
/// A dense row-major float32 matrix (rows, cols) over one array: the activation and weight container the CPU
/// kernels work on. It owns no other state, so a GPU backend can mirror it with a device buffer of the same shape.
/// </summary>
public sealed class Matrix
{
    /// <summary>A zero-filled matrix.</summary>
    public Matrix(int rows, int cols)
        : this(rows, cols, new float[CheckedLength(rows, cols)])
    {
    }

    /// <summary>Wraps <paramref name="data"/> (not copied), which must hold exactly rows·cols values.</summary>
    /// <summary>A matrix whose values the caller overwrites completely (skips zeroing large buffers).</summary>
    public static Matrix Uninitialized(int rows, int cols) => new(rows, cols, GC.AllocateUninitializedArray<float>(CheckedLength(rows, cols)));

    public Matrix(int rows, int cols, float[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length != CheckedLength(rows, cols))
            throw new ArgumentException($"a ({rows}, {cols}) matrix needs {(long)rows * cols} values, got {data.Length}", nameof(data));
        Rows = rows;
        Cols = cols;
        Data = data;
    }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>The values, row after row.</summary>
    public float[] Data { get; }

    public Span<float> Span => Data;

    /// <summary>Row <paramref name="row"/> as a span of <see cref="Cols"/> values.</summary>
    public Span<float> Row(int row)
    {
        if ((uint)row >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(row), row, $"matrix has {Rows} rows");
        return Data.AsSpan(row * Cols, Cols);
    }

    /// <summary>Rows [<paramref name="start"/>, start + count) as one span.</summary>
    public Span<float> RowRange(int start, int count) => Data.AsSpan(start * Cols, count * Cols);

    /// <summary><see cref="RowRange"/> as memory, for work that spreads over threads.</summary>
    public ReadOnlyMemory<float> RowMemory(int start, int count) => Data.AsMemory(start * Cols, count * Cols);

    public Matrix Clone() => new(Rows, Cols, (float[])Data.Clone());

    /// <summary>"(rows, cols)" for messages.</summary>
    public string ShapeText => $"({Rows}, {Cols})";

    private static int CheckedLength(int rows, int cols) => ArrayLength.Of(rows, cols, "float matrix");
}
