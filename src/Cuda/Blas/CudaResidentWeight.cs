using Converter.Compute;

namespace Converter.Cuda.Blas;

/// <summary>
/// A linear's weight (out, in) made in a GPU's memory (<see cref="IResidentWeight"/>): the reconstruction
/// <see cref="Quantization.DeviceLinearTarget"/> forms where LDLQ left Q, which comes down once and can stay as the
/// weight cache's copy of the host array (<see cref="CudaDenseAlgebra.Adopt"/>).
/// </summary>
public sealed class CudaResidentWeight : IResidentWeight
{
    private DeviceBuffer<float>? _values;

    internal CudaResidentWeight(CudaDenseAlgebra algebra, DeviceBuffer<float> values, int rows, int columns)
    {
        if (values.Count != (long)rows * columns)
            throw new ArgumentException($"a {rows}×{columns} weight needs {(long)rows * columns} values, the buffer holds {values.Count}", nameof(values));
        Algebra = algebra;
        _values = values;
        Rows = rows;
        Columns = columns;
    }

    /// <summary>The algebra whose GPU holds the values.</summary>
    public CudaDenseAlgebra Algebra { get; }

    public int Rows { get; }

    public int Columns { get; }

    private DeviceBuffer<float> Values => _values ?? throw new ObjectDisposedException(nameof(CudaResidentWeight));

    public void CopyTo(float[] host)
    {
        if (host.LongLength != Values.Count)
            throw new ArgumentException($"a host array of {host.LongLength} values cannot take a {Rows}×{Columns} weight", nameof(host));
        Algebra.Context.MakeCurrent();
        Values.CopyTo(host);
    }

    public void KeepAsCopyOf(float[] host)
    {
        if (host.LongLength != Values.Count)
            throw new ArgumentException($"a host array of {host.LongLength} values cannot stand for {Values.Count}", nameof(host));
        Algebra.Adopt(host, Values);
        _values = null;
    }

    public void Dispose()
    {
        _values?.Dispose();
        _values = null;
    }
}
