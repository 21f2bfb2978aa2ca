namespace Converter.Compute;

/// <summary>
/// A square matrix held in host memory behind <see cref="IResidentMatrix"/>: what an algebra without a device of its own
/// keeps (<see cref="IDenseAlgebra.TrySolveCrossKept"/>), so that callers hold one kind of result wherever it was made.
/// </summary>
public sealed class HostResidentMatrix : IResidentMatrix
{
    /// <param name="values">size², row-major; held, not copied.</param>
    public HostResidentMatrix(float[] values, int size)
    {
        if (values.Length != (long)size * size)
            throw new ArgumentException($"a {size}×{size} matrix needs {(long)size * size} values, got {values.Length}", nameof(values));
        Values = values;
        Size = size;
    }

    /// <summary>The values, row-major (the array itself).</summary>
    public float[] Values { get; }

    public int Size { get; }

    public bool AllFinite() => Values.AsSpan().IndexOfAnyExceptInRange(float.MinValue, float.MaxValue) < 0;

    public void AddToDiagonal(float value)
    {
        for (int i = 0; i < Size; i++)
            Values[(long)i * Size + i] += value;
    }

    public float[] ToHost() => (float[])Values.Clone();

    /// <summary>The values of any resident matrix on the host: this class's own array (no copy), else a copy brought down.</summary>
    public static float[] HostValues(IResidentMatrix matrix) => matrix is HostResidentMatrix host ? host.Values : matrix.ToHost();

    public void Dispose()
    {
    }
}
