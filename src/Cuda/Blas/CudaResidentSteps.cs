using Converter.Compute;

namespace Converter.Cuda.Blas;

/// <summary><see cref="IResidentSteps"/> in a GPU's memory (<see cref="CudaDenseAlgebra.TrySolveCrossStepsKept"/>).</summary>
public sealed class CudaResidentSteps : CudaResidentRows, IResidentSteps
{
    internal CudaResidentSteps(CudaDenseAlgebra algebra, DeviceBuffer<float> values, int rows, int columns) : base(algebra, values, rows, columns, "steps")
    {
    }

    public float[] HostValues() => ToHost();
}
