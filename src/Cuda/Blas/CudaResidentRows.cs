namespace Converter.Cuda.Blas;

/// <summary>
/// A rows × columns float32 matrix (row-major) in a GPU's memory, made by <see cref="Algebra"/> and read there: what a
/// resident weight (<see cref="CudaResidentWeight"/>), kept drift steps (<see cref="CudaResidentSteps"/>) and a
/// resident square matrix (<see cref="CudaResidentMatrix"/>) share.
/// </summary>
public abstract class CudaResidentRows : IDisposable
{
    private DeviceBuffer<float>? _values;

    private protected CudaResidentRows(CudaDenseAlgebra algebra, DeviceBuffer<float> values, int rows, int columns, string what)
    {
        if (values.Count != (long)rows * columns)
            throw new ArgumentException($"{rows}×{columns} {what} need {(long)rows * columns} values, the buffer holds {values.Count}", nameof(values));
        Algebra = algebra;
        _values = values;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>The algebra whose GPU holds the values.</summary>
    public CudaDenseAlgebra Algebra { get; }

    public int Rows { get; }

    public int Columns { get; }

    /// <summary>The values on the device, while held.</summary>
    public DeviceBuffer<float> Values => _values ?? throw new ObjectDisposedException(GetType().Name);

    /// <summary>The values, row-major, in a new host array.</summary>
    public float[] ToHost()
    {
        Algebra.Context.MakeCurrent();
        var host = new float[Values.Count];
        Values.CopyTo(host);
        return host;
    }

    /// <summary>Hands the device buffer over to whoever keeps it from now on; this object then holds nothing.</summary>
    internal DeviceBuffer<float> Release()
    {
        var values = Values;
        _values = null;
        return values;
    }

    public void Dispose()
    {
        _values?.Dispose();
        _values = null;
        GC.SuppressFinalize(this);
    }
}
