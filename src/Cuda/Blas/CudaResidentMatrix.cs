using Converter.Compute;

namespace Converter.Cuda.Blas;

/// <summary>
/// A square float matrix in one GPU's memory (<see cref="IResidentMatrix"/>): a Hessian mean left where its Gram sum
/// was (<see cref="CudaDenseAlgebra"/>'s accumulator), which that GPU's LDLQ solver rotates and factors without a trip
/// through the host.
/// </summary>
public sealed class CudaResidentMatrix : CudaResidentRows, IResidentMatrix
{
    private const int Threads = 256;

    internal CudaResidentMatrix(CudaDenseAlgebra algebra, DeviceBuffer<float> values, int size) : base(algebra, values, size, size, "matrix values")
    {
    }

    public int Size => Rows;

    public bool AllFinite()
    {
        var context = Algebra.Context;
        context.MakeCurrent();
        using var flag = context.Allocate<int>(1);
        flag.Fill(0);
        long count = Values.Count;
        var kernels = context.Module(CudaKernels.ForwardSource, new Dictionary<string, string>());
        CudaKernels.FlagNonfinite.Launch(kernels, (uint)Math.Min(4096, (count + Threads - 1) / Threads), Threads, 0, (Values.Pointer, count, flag.Pointer));
        Span<int> result = stackalloc int[1];
        flag.CopyTo(result);
        return result[0] == 0;
    }

    public void AddToDiagonal(float value)
    {
        Algebra.Context.MakeCurrent();
        CudaKernels.AddToDiagonal.Launch(Algebra.DenseKernels, (uint)((Size + Threads - 1) / Threads), Threads, 0, (Values.Pointer, Size, value));
    }
}
