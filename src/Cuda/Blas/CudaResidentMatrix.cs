using Converter.Compute;

namespace Converter.Cuda.Blas;

/// <summary>
/// A square float matrix in one GPU's memory (<see cref="IResidentMatrix"/>): a Hessian mean left where its Gram sum
/// was (<see cref="CudaDenseAlgebra"/>'s accumulator), which that GPU's LDLQ solver rotates and factors without a trip
/// through the host.
/// </summary>
public sealed class CudaResidentMatrix : IResidentMatrix
{
    private const int Threads = 256;
    private DeviceBuffer<float>? _values;

    internal CudaResidentMatrix(CudaDenseAlgebra algebra, DeviceBuffer<float> values, int size)
    {
        if (values.Count != (long)size * size)
            throw new ArgumentException($"a {size}×{size} matrix needs {(long)size * size} values, the buffer holds {values.Count}", nameof(values));
        Algebra = algebra;
        _values = values;
        Size = size;
    }

    /// <summary>The algebra whose GPU holds the values.</summary>
    public CudaDenseAlgebra Algebra { get; }

    public int Size { get; }

    /// <summary>The values on the device (row-major), while not disposed.</summary>
    public DeviceBuffer<float> Values => _values ?? throw new ObjectDisposedException(nameof(CudaResidentMatrix));

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

    public float[] ToHost()
    {
        Algebra.Context.MakeCurrent();
        var host = new float[Values.Count];
        Values.CopyTo(host);
        return host;
    }

    /// <summary>Hands the device buffer to the caller, who owns it from now on; this matrix is then disposed.</summary>
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
    }
}
