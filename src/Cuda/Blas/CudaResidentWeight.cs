using Converter.Compute;

namespace Converter.Cuda.Blas;

/// <summary>
/// A linear's weight (out, in) made in a GPU's memory (<see cref="IResidentWeight"/>): the reconstruction
/// <see cref="Quantization.DeviceLinearTarget"/> forms where LDLQ left Q, which comes down once and can stay as the
/// weight cache's copy of the host array (<see cref="CudaDenseAlgebra.Adopt"/>).
/// </summary>
public sealed class CudaResidentWeight : CudaResidentRows, IResidentWeight
{
    internal CudaResidentWeight(CudaDenseAlgebra algebra, DeviceBuffer<float> values, int rows, int columns) : base(algebra, values, rows, columns, "weights")
    {
    }

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
        Algebra.Adopt(host, Release());
    }
}
